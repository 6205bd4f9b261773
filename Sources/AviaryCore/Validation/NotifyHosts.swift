import Foundation

/// The hosts rollout notices may go to (`AVIARY_NOTIFY_HOSTS`, docs/security.md): entries are
/// `host` (any port) or `host:port`, compared without case. A `notify_url` elsewhere is refused
/// when the experiment is written, so an admin key cannot aim the server at an internal
/// address such as a cloud metadata service.
public struct NotifyHosts: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var host: String
        public var port: Int?
    }

    public var entries: [Entry]

    /// Parses the comma-separated list; nil when it names nothing (every host is allowed).
    public init?(_ list: String) throws {
        var entries: [Entry] = []
        for item in list.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) where !item.isEmpty {
            // `[::1]:8080` and `[::1]` for IPv6; otherwise the last colon separates the port.
            func portNumber(_ digits: Substring) throws -> Int {
                guard let p = Int(digits), (1...65535).contains(p) else { throw Invalid(item: item) }
                return p
            }
            var host = item, port: Int?
            if item.hasPrefix("[") {
                guard let close = item.firstIndex(of: "]") else { throw Invalid(item: item) }
                host = String(item[item.index(after: item.startIndex)..<close])
                let rest = item[item.index(after: close)...]
                if rest.hasPrefix(":") { port = try portNumber(rest.dropFirst()) } else if !rest.isEmpty { throw Invalid(item: item) }
            } else if let colon = item.lastIndex(of: ":") {
                host = String(item[..<colon])
                port = try portNumber(item[item.index(after: colon)...])
            }
            guard !host.isEmpty, !host.contains("/") else { throw Invalid(item: item) }
            entries.append(Entry(host: host, port: port))
        }
        guard !entries.isEmpty else { return nil }
        self.entries = entries
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var item: String
        public var description: String { "AVIARY_NOTIFY_HOSTS: \"\(item)\" is not a host or host:port" }
    }

    /// Whether a notice may go to `url`'s host and port (the scheme's default port when none).
    public func allows(_ url: URL) -> Bool {
        guard let host = url.host?.lowercased() else { return false }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        let port = url.port ?? (url.scheme?.lowercased() == "https" ? 443 : 80)
        return entries.contains { $0.host == bare && ($0.port == nil || $0.port == port) }
    }

    public var description: String {
        entries.map { entry in entry.port.map { "\(entry.host):\($0)" } ?? entry.host }.joined(separator: ", ")
    }
}
