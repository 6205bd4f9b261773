import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Metric definitions. Writes share the configuration lock, so a metric cannot be deleted while
/// an experiment naming it is being written.
public struct MetricRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    public func put(_ key: String, body: JSON, ifMatch: Int?, actor: String?) async throws -> (Metric, PutOutcome) {
        try await database.configTransaction { connection in
            var metric: Metric
            switch MetricValidator.validate(body, key: key) {
            case .success(let m): metric = m
            case .failure(let f): throw AviaryError.invalid(code: "invalid_metric", issues: f.issues)
            }
            let existing = try await fetch(key, on: connection)
            if let ifMatch {
                guard let existing else { throw AviaryError.preconditionFailed(current: 0) }
                if existing.revision != ifMatch { throw AviaryError.preconditionFailed(current: existing.revision) }
            }
            let now = Date()
            metric.revision = (existing?.revision ?? 0) + 1
            metric.createdAt = existing?.createdAt ?? now
            metric.updatedAt = now
            try await connection.query(
                """
                INSERT INTO metrics (key, definition, revision, created_at, updated_at)
                VALUES (\(key), \(metric.json.canonicalString())::jsonb, \(metric.revision), \(metric.createdAt), \(metric.updatedAt))
                ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, revision = excluded.revision, updated_at = excluded.updated_at
                """, logger: logger)
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: existing == nil ? "metric.create" : "metric.update", targetType: "metric",
                targetKey: key, experiment: nil, before: existing?.json, after: metric.json)
            return (metric, existing == nil ? .created : .updated)
        }
    }

    public func get(_ key: String) async throws -> Metric {
        try await database.client.withConnection { connection in
            guard let m = try await fetch(key, on: connection) else { throw AviaryError.notFound("metric \"\(key)\" does not exist") }
            return m
        }
    }

    public func list() async throws -> [Metric] {
        try await Self.decode(try await database.client.query("SELECT key, definition::text, revision, created_at, updated_at FROM metrics ORDER BY key", logger: logger))
    }

    /// The metrics a report on `definition` shows, in the report's order (ReportBuilder.metricKeys);
    /// names with no definition are left out.
    public func forReport(of definition: ExperimentDefinition) async throws -> [Metric] {
        let keys = ReportBuilder.metricKeys(of: definition)
        let defined = try await list().filter { keys.contains($0.key) }
        return keys.compactMap { key in defined.first { $0.key == key } }
    }

    /// Deletes a metric no live experiment names (in `metrics` or as a rollout guardrail).
    public func delete(_ key: String, actor: String?) async throws {
        try await database.configTransaction { connection in
            guard let existing = try await fetch(key, on: connection) else { throw AviaryError.notFound("metric \"\(key)\" does not exist") }
            var users: [String] = []
            let rows = try await connection.query(
                """
                SELECT key FROM experiments WHERE archived_at IS NULL AND (
                    definition->'metrics'->'primary' ? \(key) OR definition->'metrics'->'secondary' ? \(key)
                    OR definition->'metrics'->'guardrails' ? \(key)
                    OR definition->'rollout'->'guardrails' @> jsonb_build_array(jsonb_build_object('metric', \(key)::text))) ORDER BY key
                """, logger: logger)
            for try await k in rows.decode(String.self) { users.append(k) }
            guard users.isEmpty else {
                throw AviaryError.conflict(
                    "metric \"\(key)\" is still used by experiments " + users.map { "\"\($0)\"" }.joined(separator: ", "),
                    issues: users.map { ValidationIssue(path: "experiments", message: $0) })
            }
            try await connection.query("DELETE FROM metrics WHERE key = \(key)", logger: logger)
            try await insertAudit(
                on: connection, logger: logger, actor: actor, action: "metric.delete", targetType: "metric", targetKey: key, experiment: nil,
                before: existing.json, after: nil)
        }
    }

    private func fetch(_ key: String, on connection: PostgresConnection) async throws -> Metric? {
        try await Self.decode(
            try await connection.query("SELECT key, definition::text, revision, created_at, updated_at FROM metrics WHERE key = \(key)", logger: logger)
        ).first
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [Metric] {
        var result: [Metric] = []
        for try await (key, definition, revision, createdAt, updatedAt) in rows.decode((String, String, Int, Date, Date).self) {
            guard case .success(var metric) = MetricValidator.validate(try JSON.stored(definition), key: key) else {
                throw StoredDataError(description: "stored metric \(key) could not be read")
            }
            metric.revision = revision
            metric.createdAt = createdAt
            metric.updatedAt = updatedAt
            result.append(metric)
        }
        return result
    }
}
