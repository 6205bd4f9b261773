import AviaryCore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// The dashboard's login session: a cookie naming an admin key and an expiry, signed with an
/// HMAC keyed by that key's stored digest. Nothing is kept on the server, so every replica
/// accepts the cookie, and revoking the key ends its sessions. The CSRF token of the session's
/// forms is another HMAC of the same fields, so it is bound to the session.
struct DashboardSession: Sendable, Equatable {
    static let cookieName = "aviary_session"
    /// The login form's token before there is a session (a double-submit cookie).
    static let loginCookieName = "aviary_login"
    static let lifetime: TimeInterval = 8 * 3600

    var keyID: String
    var expires: Int

    /// A session for `key` from `now`.
    init(key: APIKey, now: Date = Date()) {
        keyID = key.id
        expires = Int(now.timeIntervalSince1970 + Self.lifetime)
    }

    private init(keyID: String, expires: Int) {
        self.keyID = keyID
        self.expires = expires
    }

    /// `<key id>.<expiry>.<hmac>`; key ids hold no dot.
    func cookieValue(_ key: APIKey) -> String {
        "\(keyID).\(expires).\(Self.mac(key, "session", keyID, expires))"
    }

    func csrfToken(_ key: APIKey) -> String {
        Self.mac(key, "csrf", keyID, expires)
    }

    /// The session a request's cookie names, with its admin key, when its signature holds, it
    /// has not expired and the key is still an admin key.
    static func verify(_ request: Request, keys: KeyAuthenticator, now: Date = Date()) -> (DashboardSession, APIKey)? {
        guard let value = request.headers.cookie(cookieName) else { return nil }
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let expires = Int(parts[1]), expires > Int(now.timeIntervalSince1970),
            let key = keys.key(id: String(parts[0])), key.role == .admin
        else { return nil }
        let session = DashboardSession(keyID: key.id, expires: expires)
        guard APIKeySecret.constantTimeEquals(parts[2], mac(key, "session", key.id, expires)) else { return nil }
        return (session, key)
    }

    /// Whether a form's `csrf_token` is this session's.
    func accepts(csrfToken token: String?, key: APIKey) -> Bool {
        guard let token else { return false }
        return APIKeySecret.constantTimeEquals(token, csrfToken(key))
    }

    private static func mac(_ key: APIKey, _ purpose: String, _ id: String, _ expires: Int) -> String {
        HMAC<SHA256>.authenticationCode(for: Array("aviary-\(purpose)\n\(id)\n\(expires)".utf8), using: SymmetricKey(data: key.hash)).hexString
    }

    /// `Set-Cookie` for a dashboard cookie: `HttpOnly`, `SameSite=Strict`, for `/ui`, and
    /// `Secure` when the request came over HTTPS (directly or through a proxy that says so).
    static func setCookie(_ name: String, _ value: String, maxAge: Int, request: Request) -> String {
        var cookie = "\(name)=\(value); Path=/ui; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
        if isHTTPS(request) { cookie += "; Secure" }
        return cookie
    }

    static func isHTTPS(_ request: Request) -> Bool {
        request.head.scheme == "https" || request.headers[.xForwardedProto]?.lowercased() == "https"
            || (request.headers[.forwarded]?.lowercased().contains("proto=https") ?? false)
    }
}

extension HTTPField.Name {
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let forwarded = Self("Forwarded")!
}
