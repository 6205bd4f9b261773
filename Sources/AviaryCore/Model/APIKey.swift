import Crypto
import Foundation

public enum APIKeyRole: String, Sendable, Hashable, Codable, CaseIterable {
    case admin, client
}

/// A stored API key. The secret itself is never kept: only its SHA-256.
public struct APIKey: Sendable, Hashable {
    public var id: String
    public var role: APIKeyRole
    public var name: String
    public var prefix: String
    public var hash: [UInt8]
    public var createdAt: Date
    public var createdBy: String?

    public init(id: String, role: APIKeyRole, name: String, prefix: String, hash: [UInt8], createdAt: Date, createdBy: String?) {
        self.id = id
        self.role = role
        self.name = name
        self.prefix = prefix
        self.hash = hash
        self.createdAt = createdAt
        self.createdBy = createdBy
    }

    public var json: JSON {
        [
            "id": .string(id), "role": .string(role.rawValue), "name": .string(name), "prefix": .string(prefix),
            "created_at": .string(Timestamp.format(createdAt)), "created_by": createdBy.map(JSON.string) ?? .null,
        ]
    }
}

/// Making, hashing and comparing key secrets.
public enum APIKeySecret {
    /// A new secret: `avk_` and 48 hex digits (192 random bits).
    public static func generate() -> String {
        var rng = SystemRandomNumberGenerator()
        return "avk_" + randomHex(bytes: 24, using: &rng)
    }

    /// A new key id: `key_` and 16 hex digits.
    public static func generateID() -> String {
        var rng = SystemRandomNumberGenerator()
        return "key_" + randomHex(bytes: 8, using: &rng)
    }

    public static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    /// The part of a secret that may be shown again to tell keys apart.
    public static func displayPrefix(_ secret: String) -> String { String(secret.prefix(8)) }

    /// Compares two digests without an early exit, so timing says nothing about where they differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in a.indices { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// Compares two tokens (a cookie's signature, a form's CSRF token) the same way, byte by byte.
    public static func constantTimeEquals(_ a: some StringProtocol, _ b: some StringProtocol) -> Bool {
        constantTimeEquals(Array(a.utf8), Array(b.utf8))
    }

    /// `bytes` random bytes in hex.
    public static func randomHex(bytes: Int, using rng: inout some RandomNumberGenerator) -> String {
        (0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &rng) }.hexString
    }
}
