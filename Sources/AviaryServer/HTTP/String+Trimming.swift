extension StringProtocol {
    /// The text without leading and trailing spaces and tabs (HTTP's optional white space),
    /// without going through Foundation, which is slow on this path.
    var trimmedOWS: String {
        let utf8 = self.utf8
        var first: String.Index?
        var afterLast = utf8.startIndex
        var i = utf8.startIndex
        while i < utf8.endIndex {
            let next = utf8.index(after: i)
            if utf8[i] != UInt8(ascii: " "), utf8[i] != UInt8(ascii: "\t") {
                if first == nil { first = i }
                afterLast = next
            }
            i = next
        }
        guard let first else { return "" }
        return String(self[first..<afterLast])
    }
}
