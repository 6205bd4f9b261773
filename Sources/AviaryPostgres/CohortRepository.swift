import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Saved conditions. Writes share the configuration lock with experiments, so a cohort cannot
/// be deleted while an experiment that refers to it is being written.
public struct CohortRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    static let columns = "key, name, description, condition::text, revision, created_at, updated_at"

    /// Creates or replaces a cohort. `ifMatch`, when given, must name the current revision.
    public func put(_ key: String, body: JSON, ifMatch: Int?, actor: String?) async throws -> (Cohort, PutOutcome) {
        try await database.configTransaction { connection in
            var references: [String: Set<String>] = [:]
            let rows = try await connection.query("SELECT key, cohort_refs FROM cohorts", logger: logger)
            for try await (k, refs) in rows.decode((String, [String]).self) { references[k] = Set(refs) }

            let draft: CohortValidator.Draft
            switch CohortValidator.validate(body, key: key, references: references) {
            case .success(let d): draft = d
            case .failure(let f): throw AviaryError.invalid(code: "invalid_cohort", issues: f.issues)
            }
            let existing = try await fetch(key, on: connection)
            if let ifMatch {
                guard let existing else { throw AviaryError.preconditionFailed(current: 0) }
                if existing.revision != ifMatch { throw AviaryError.preconditionFailed(current: existing.revision) }
            }
            let now = Date()
            let cohort = Cohort(
                key: key, name: draft.name, description: draft.description, condition: draft.condition,
                revision: (existing?.revision ?? 0) + 1, createdAt: existing?.createdAt ?? now, updatedAt: now)
            try await connection.query(
                """
                INSERT INTO cohorts (key, name, description, condition, cohort_refs, revision, created_at, updated_at)
                VALUES (\(key), \(cohort.name), \(cohort.description), \(cohort.condition.json.canonicalString())::jsonb,
                        \(Array(cohort.condition.cohortReferences).sorted()), \(cohort.revision), \(cohort.createdAt), \(cohort.updatedAt))
                ON CONFLICT (key) DO UPDATE SET name = excluded.name, description = excluded.description, condition = excluded.condition,
                    cohort_refs = excluded.cohort_refs, revision = excluded.revision, updated_at = excluded.updated_at
                """, logger: logger)
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: existing == nil ? "cohort.create" : "cohort.update",
                targetType: "cohort", targetKey: key, experiment: nil, before: existing?.json, after: cohort.json)
            try await notifyConfigChanged(on: connection, logger: logger, what: "cohort")
            return (cohort, existing == nil ? .created : .updated)
        }
    }

    public func get(_ key: String) async throws -> Cohort {
        try await database.client.withConnection { connection in
            guard let c = try await fetch(key, on: connection) else { throw AviaryError.notFound("cohort \"\(key)\" does not exist") }
            return c
        }
    }

    public func list() async throws -> [Cohort] {
        try await Self.decode(try await database.client.query("SELECT \(unescaped: Self.columns) FROM cohorts ORDER BY key", logger: logger))
    }

    /// Deletes a cohort no live experiment and no other cohort refers to.
    public func delete(_ key: String, actor: String?) async throws {
        try await database.configTransaction { connection in
            guard let existing = try await fetch(key, on: connection) else { throw AviaryError.notFound("cohort \"\(key)\" does not exist") }
            var users: [String] = []
            for try await k in try await connection.query(
                "SELECT key FROM experiments WHERE archived_at IS NULL AND cohort_refs @> ARRAY[\(key)]::text[] ORDER BY key", logger: logger
            ).decode(String.self) {
                users.append(k)
            }
            var cohortUsers: [String] = []
            for try await k in try await connection.query(
                "SELECT key FROM cohorts WHERE cohort_refs @> ARRAY[\(key)]::text[] AND key <> \(key) ORDER BY key", logger: logger
            ).decode(String.self) {
                cohortUsers.append(k)
            }
            guard users.isEmpty, cohortUsers.isEmpty else {
                var parts: [String] = []
                if !users.isEmpty { parts.append("experiments " + users.map { "\"\($0)\"" }.joined(separator: ", ")) }
                if !cohortUsers.isEmpty { parts.append("cohorts " + cohortUsers.map { "\"\($0)\"" }.joined(separator: ", ")) }
                throw AviaryError.conflict(
                    "cohort \"\(key)\" is still used by \(parts.joined(separator: " and "))",
                    issues: users.map { ValidationIssue(path: "experiments", message: $0) } + cohortUsers.map { ValidationIssue(path: "cohorts", message: $0) })
            }
            try await connection.query("DELETE FROM cohorts WHERE key = \(key)", logger: logger)
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: "cohort.delete", targetType: "cohort", targetKey: key, experiment: nil,
                before: existing.json, after: nil)
            try await notifyConfigChanged(on: connection, logger: logger, what: "cohort")
        }
    }

    private func fetch(_ key: String, on connection: PostgresConnection) async throws -> Cohort? {
        try await Self.decode(try await connection.query("SELECT \(unescaped: Self.columns) FROM cohorts WHERE key = \(key)", logger: logger)).first
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [Cohort] {
        var result: [Cohort] = []
        for try await (key, name, description, conditionText, revision, createdAt, updatedAt) in rows.decode(
            (String, String, String, String, Int, Date, Date).self)
        {
            var issues = IssueCollector()
            guard let condition = ConditionParser(knownCohorts: nil).parse(try JSON.stored(conditionText), at: .root, issues: &issues) else {
                throw StoredDataError(description: "stored cohort \(key) could not be read: \(issues.issues)")
            }
            result.append(
                Cohort(key: key, name: name, description: description, condition: condition, revision: revision, createdAt: createdAt, updatedAt: updatedAt))
        }
        return result
    }
}
