import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Reads the audit log, newest first, a page at a time.
public struct AuditRepository: Sendable {
    let database: AviaryDatabase

    /// - Parameters:
    ///   - before: only entries with a smaller id (the cursor of the previous page).
    public func list(experiment: String?, before: Int64?, limit: Int) async throws -> [AuditEntry] {
        try await database.query(
            """
            SELECT id, at, actor_key_id, action, target_type, target_key, experiment_key, before::text, after::text
            FROM audit_log
            WHERE (\(experiment)::text IS NULL OR experiment_key = \(experiment)) AND (\(before)::bigint IS NULL OR id < \(before))
            ORDER BY id DESC LIMIT \(limit)
            """) { rows in
            var result: [AuditEntry] = []
            for try await (id, at, actor, action, targetType, targetKey, experimentKey, beforeText, afterText) in rows.decode(
                (Int64, Date, String?, String, String, String, String?, String?, String?).self)
            {
                result.append(
                    AuditEntry(
                        id: id, at: at, actorKeyID: actor, action: action, targetType: targetType, targetKey: targetKey, experiment: experimentKey,
                        before: try beforeText.map(JSON.stored), after: try afterText.map(JSON.stored)))
            }
            return result
        }
    }
}
