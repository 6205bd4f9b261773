/// Text PostgreSQL can hold. Its `text` and `jsonb` refuse U+0000 (SQLSTATE 22021 and 22P05), so
/// a NUL that got in would fail the whole statement carrying it — every other row of a batch
/// with it. Every place text enters refuses it instead (docs/security.md, "Hostile input").
public enum StorableText {
    /// The message of an issue at a string that holds a NUL.
    public static let nulProblem = "contains the character U+0000 (NUL), which cannot be stored"

    @inlinable
    public static func isStorable(_ text: some StringProtocol) -> Bool {
        !text.utf8.contains(0)
    }

    /// `text` cut to at most `bytes` bytes of UTF-8, at a character boundary.
    public static func prefix(_ text: String, bytes: Int) -> String {
        guard text.utf8.count > bytes else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: bytes)
        while String.Index(end, within: text) == nil { end = text.utf8.index(before: end) }
        return String(text[..<end])
    }
}
