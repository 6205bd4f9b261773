import HTTPTypes

extension HTTPFields {
    /// Calls `body` with each cookie of the `Cookie` headers, in order: the name and value
    /// trimmed, a quoted value unquoted; pairs without a name are skipped.
    func forEachCookie(_ body: (_ name: String, _ value: String) -> Void) {
        for field in self[values: .cookie] {
            for pair in field.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard let rawName = parts.first else { continue }
                let name = rawName.trimmedOWS
                guard !name.isEmpty else { continue }
                var value = parts.count > 1 ? parts[1].trimmedOWS : ""
                if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
                body(name, value)
            }
        }
    }

    /// The value of the first cookie named `name`.
    func cookie(_ name: String) -> String? {
        var found: String?
        forEachCookie { if found == nil, $0 == name { found = $1 } }
        return found
    }
}
