import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// API keys, stored as SHA-256 digests.
public struct APIKeyRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    public static let bootstrapID = "key_bootstrap"

    /// Creates a key and returns it with its secret, which is never shown again.
    public func create(role: APIKeyRole, name: String, actor: String?) async throws -> (APIKey, secret: String) {
        let secret = APIKeySecret.generate()
        let key = APIKey(
            id: APIKeySecret.generateID(), role: role, name: name, prefix: APIKeySecret.displayPrefix(secret), hash: APIKeySecret.hash(secret),
            createdAt: Date(), createdBy: actor)
        try await database.transaction { connection in
            try await insert(key, on: connection)
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: "key.create", targetType: "key", targetKey: key.id, experiment: nil,
                before: nil, after: key.json)
            try await notifyConfigChanged(on: connection, logger: logger, what: "keys")
        }
        return (key, secret)
    }

    /// Makes `secret` (from `AVIARY_ADMIN_TOKEN`) a live admin key, replacing an earlier bootstrap token.
    public func bootstrapAdmin(secret: String) async throws {
        let hash = APIKeySecret.hash(secret)
        try await database.execute(
            """
            INSERT INTO api_keys (id, role, name, key_hash, key_prefix, created_by)
            VALUES (\(Self.bootstrapID), 'admin', 'AVIARY_ADMIN_TOKEN', \(ByteBuffer(bytes: hash)), \(APIKeySecret.displayPrefix(secret)), NULL)
            ON CONFLICT (id) DO UPDATE SET key_hash = excluded.key_hash, key_prefix = excluded.key_prefix, revoked_at = NULL
            """)
    }

    /// Every key that is not revoked, digests included, for the in-memory authenticator; a row
    /// whose role this version does not know is `.unreadable` (and authenticates nothing).
    public func active() async throws -> [Stored<APIKey>] {
        try await database.query(
            "SELECT id, role, name, key_prefix, key_hash, created_at, created_by FROM api_keys WHERE revoked_at IS NULL ORDER BY created_at, id") { rows in
            var result: [Stored<APIKey>] = []
            for try await (id, role, name, prefix, hash, createdAt, createdBy) in rows.decode((String, String, String, String, ByteBuffer, Date, String?).self) {
                guard let role = APIKeyRole(rawValue: role) else {
                    let problem = "its role \"\(role.prefix(40))\" is not one of \(APIKeyRole.allCases.map(\.rawValue).joined(separator: ", "))"
                    result.append(.unreadable(UnreadableObject(kind: .key, key: id, problem: problem)))
                    continue
                }
                result.append(
                    .readable(APIKey(id: id, role: role, name: name, prefix: prefix, hash: Array(buffer: hash), createdAt: createdAt, createdBy: createdBy)))
            }
            return result
        }
    }

    /// Revokes a key: it stops working and leaves the list; its row stays for the audit log.
    public func revoke(id: String, actor: String?) async throws {
        try await database.transaction { connection in
            let rows = try await connection.query(
                """
                UPDATE api_keys SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL
                RETURNING id, role, name, key_prefix, created_at, created_by
                """, logger: logger)
            var revoked: APIKey?
            for try await (id, role, name, prefix, createdAt, createdBy) in rows.decode((String, String, String, String, Date, String?).self) {
                revoked = APIKey(
                    id: id, role: APIKeyRole(rawValue: role) ?? .client, name: name, prefix: prefix, hash: [], createdAt: createdAt, createdBy: createdBy)
            }
            guard let revoked else { throw AviaryError.notFound("key \"\(id)\" does not exist") }
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: "key.delete", targetType: "key", targetKey: id, experiment: nil,
                before: revoked.json, after: nil)
            try await notifyConfigChanged(on: connection, logger: logger, what: "keys")
        }
    }

    private func insert(_ key: APIKey, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO api_keys (id, role, name, key_hash, key_prefix, created_at, created_by)
            VALUES (\(key.id), \(key.role.rawValue), \(key.name), \(ByteBuffer(bytes: key.hash)), \(key.prefix), \(key.createdAt), \(key.createdBy))
            """, logger: logger)
    }
}
