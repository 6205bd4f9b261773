/// The key grammar shared by experiments, variants, cohorts, metrics, layers and rule names:
/// `^[a-z0-9][a-z0-9_-]{0,62}$`. Keys end up in HTTP header names and values, so the grammar
/// is also what keeps request data out of headers.
public enum Key {
    public static func isValid(_ s: String) -> Bool {
        let utf8 = s.utf8
        guard !utf8.isEmpty, utf8.count <= 63 else { return false }
        for (i, c) in utf8.enumerated() {
            let lowerOrDigit = (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            if i == 0 {
                guard lowerOrDigit else { return false }
            } else {
                guard lowerOrDigit || c == UInt8(ascii: "_") || c == UInt8(ascii: "-") else { return false }
            }
        }
        return true
    }
}
