import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// How a configuration object is kept in its table (`cohorts`, `metrics`).
protocol StoredConfigObject: ConfigObject {
    /// `SELECT <columns> FROM <table>` decodes with `decode`; fixed SQL text.
    static var selectAll: String { get }
    static func decode(_ rows: PostgresRowSequence) async throws -> [Self]
    /// Reads what validation needs under the configuration lock and validates `body`.
    static func validated(_ body: JSON, key: String, on connection: PostgresConnection, logger: Logger) async throws -> Self
    /// What refers to the object `key`, by kind, each list sorted.
    static func users(of key: String, on connection: PostgresConnection, logger: Logger) async throws -> [(kind: String, keys: [String])]
    /// Whether assignment reads it, so that a write must `NOTIFY` the replicas.
    static var assignmentReadsIt: Bool { get }
    /// Inserts or replaces the row.
    var upsert: PostgresQuery { get }
    static func deleteRow(_ key: String) -> PostgresQuery
}

/// A stored kind's SQL and rules, so that the store's API needs no storage protocol.
struct ObjectTable<Object: ConfigObject>: Sendable {
    let selectAll: String
    let assignmentReadsIt: Bool
    let decode: @Sendable (PostgresRowSequence) async throws -> [Object]
    let validated: @Sendable (JSON, String, PostgresConnection, Logger) async throws -> Object
    let users: @Sendable (String, PostgresConnection, Logger) async throws -> [(kind: String, keys: [String])]
    let upsert: @Sendable (Object) -> PostgresQuery
    let deleteRow: @Sendable (String) -> PostgresQuery
}

extension ObjectTable where Object: StoredConfigObject {
    init() {
        self.init(
            selectAll: Object.selectAll, assignmentReadsIt: Object.assignmentReadsIt, decode: { try await Object.decode($0) },
            validated: { try await Object.validated($0, key: $1, on: $2, logger: $3) }, users: { try await Object.users(of: $0, on: $1, logger: $2) },
            upsert: { $0.upsert }, deleteRow: { Object.deleteRow($0) })
    }
}

/// Cohorts and metric definitions: one store for objects kept by key with a revision. Each write
/// is one unit of work under the configuration lock (so a cohort cannot be deleted while an
/// experiment naming it is being written): load, apply the core's rule (`ConfigObject.put`,
/// `.delete`), save, audit and, when assignment reads the object, `NOTIFY`.
public struct ConfigObjectStore<Object: ConfigObject>: Sendable {
    let database: AviaryDatabase
    let table: ObjectTable<Object>
    var logger: Logger { database.logger }

    /// Creates or replaces the object `key` from a request body.
    public func put(_ key: String, body: JSON, ifMatch: Int?, actor: String?, now: Date = Date()) async throws -> (Object, PutOutcome) {
        try await write(key, ifMatch: ifMatch, actor: actor, now: now) { _ in body }
    }

    /// A JSON merge patch (RFC 7396) of the object `key`, which must exist: merged into it in the
    /// same transaction, then validated and written as that `PUT` would be.
    public func patch(_ key: String, patch: JSON, ifMatch: Int?, actor: String?, now: Date = Date()) async throws -> Object {
        try await write(key, ifMatch: ifMatch, actor: actor, now: now) { current in
            guard let current else { throw AviaryError.notFound("\(Object.kind) \"\(key)\" does not exist") }
            return current.json.applying(mergePatch: patch)
        }.0
    }

    /// One `PUT` of the object `key` under the configuration lock: the document `body` makes of
    /// the stored object (nil when there is none), validated, written, audited.
    private func write(
        _ key: String, ifMatch: Int?, actor: String?, now: Date, body: @Sendable (Object?) throws -> JSON
    ) async throws -> (Object, PutOutcome) {
        try await database.configTransaction { connection in
            let current = try await fetch(key, on: connection)
            let parsed = try await table.validated(try body(current), key, connection, logger)
            let change = try Object.put(parsed, over: current, ifMatch: ifMatch, now: now)
            try await save(change, key: key, on: connection, actor: actor)
            return (change.object!, change.outcome)
        }
    }

    /// Deletes the object `key`; refused while something uses it.
    public func delete(_ key: String, actor: String?) async throws {
        try await database.configTransaction { connection in
            let users = try await table.users(key, connection, logger)
            let change = try Object.delete(try await fetch(key, on: connection), key: key, usedBy: users)
            try await save(change, key: key, on: connection, actor: actor)
        }
    }

    public func get(_ key: String) async throws -> Object {
        try await database.client.withConnection { connection in
            guard let object = try await fetch(key, on: connection) else { throw AviaryError.notFound("\(Object.kind) \"\(key)\" does not exist") }
            return object
        }
    }

    public func list() async throws -> [Object] {
        try await table.decode(try await database.client.query(PostgresQuery(unsafeSQL: table.selectAll + " ORDER BY key"), logger: logger))
    }

    func fetch(_ key: String, on connection: PostgresConnection) async throws -> Object? {
        var bindings = PostgresBindings()
        bindings.append(key)
        return try await table.decode(try await connection.query(PostgresQuery(unsafeSQL: table.selectAll + " WHERE key = $1", binds: bindings), logger: logger)).first
    }

    private func save(_ change: ConfigObjectChange<Object>, key: String, on connection: PostgresConnection, actor: String?) async throws {
        try await connection.query(change.object.map(table.upsert) ?? table.deleteRow(key), logger: logger)
        try await insertAudit(
            on: connection, logger: logger, actor: actor, action: change.action, targetType: Object.kind, targetKey: key, experiment: nil,
            before: change.before?.json, after: change.object?.json)
        if table.assignmentReadsIt { try await notifyConfigChanged(on: connection, logger: logger, what: Object.kind) }
    }
}

extension Cohort: StoredConfigObject {
    static let selectAll = "SELECT key, name, description, condition::text, revision, created_at, updated_at FROM cohorts"
    static let assignmentReadsIt = true

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

    /// Validated against the other cohorts' references, for unknown cohorts and cycles.
    static func validated(_ body: JSON, key: String, on connection: PostgresConnection, logger: Logger) async throws -> Cohort {
        var references: [String: Set<String>] = [:]
        for try await (k, refs) in try await connection.query("SELECT key, cohort_refs FROM cohorts", logger: logger).decode((String, [String]).self) {
            references[k] = Set(refs)
        }
        return try validated(body, key: key, references: references)
    }

    /// Live experiments and other cohorts whose conditions name it.
    static func users(of key: String, on connection: PostgresConnection, logger: Logger) async throws -> [(kind: String, keys: [String])] {
        let experiments = try await connection.query(
            "SELECT key FROM experiments WHERE archived_at IS NULL AND cohort_refs @> ARRAY[\(key)]::text[] ORDER BY key", logger: logger)
        let cohorts = try await connection.query(
            "SELECT key FROM cohorts WHERE cohort_refs @> ARRAY[\(key)]::text[] AND key <> \(key) ORDER BY key", logger: logger)
        return [("experiments", try await experiments.values(String.self)), ("cohorts", try await cohorts.values(String.self))]
    }

    var upsert: PostgresQuery {
        """
        INSERT INTO cohorts (key, name, description, condition, cohort_refs, revision, created_at, updated_at)
        VALUES (\(key), \(name), \(description), \(condition.json.canonicalString())::jsonb,
                \(Array(condition.cohortReferences).sorted()), \(revision), \(createdAt), \(updatedAt))
        ON CONFLICT (key) DO UPDATE SET name = excluded.name, description = excluded.description, condition = excluded.condition,
            cohort_refs = excluded.cohort_refs, revision = excluded.revision, updated_at = excluded.updated_at
        """
    }

    static func deleteRow(_ key: String) -> PostgresQuery { "DELETE FROM cohorts WHERE key = \(key)" }
}

extension Metric: StoredConfigObject {
    static let selectAll = "SELECT key, definition::text, revision, created_at, updated_at FROM metrics"
    /// Reports read metrics; assignment does not.
    static let assignmentReadsIt = false

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

    static func validated(_ body: JSON, key: String, on connection: PostgresConnection, logger: Logger) async throws -> Metric {
        try validated(body, key: key)
    }

    /// Live experiments naming it in `metrics` or as a rollout guardrail.
    static func users(of key: String, on connection: PostgresConnection, logger: Logger) async throws -> [(kind: String, keys: [String])] {
        let rows = try await connection.query(
            """
            SELECT key FROM experiments WHERE archived_at IS NULL AND (
                definition->'metrics'->'primary' ? \(key) OR definition->'metrics'->'secondary' ? \(key)
                OR definition->'metrics'->'guardrails' ? \(key)
                OR definition->'rollout'->'guardrails' @> jsonb_build_array(jsonb_build_object('metric', \(key)::text))) ORDER BY key
            """, logger: logger)
        return [("experiments", try await rows.values(String.self))]
    }

    var upsert: PostgresQuery {
        """
        INSERT INTO metrics (key, definition, revision, created_at, updated_at)
        VALUES (\(key), \(json.canonicalString())::jsonb, \(revision), \(createdAt), \(updatedAt))
        ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, revision = excluded.revision, updated_at = excluded.updated_at
        """
    }

    static func deleteRow(_ key: String) -> PostgresQuery { "DELETE FROM metrics WHERE key = \(key)" }
}

extension ConfigObjectStore where Object == Metric {
    /// The metrics a report on `definition` shows, in the report's order
    /// (`ReportBuilder.metricKeys`); names with no definition are left out.
    public func forReport(of definition: ExperimentDefinition) async throws -> [Metric] {
        let keys = ReportBuilder.metricKeys(of: definition)
        let defined = try await list().filter { keys.contains($0.key) }
        return keys.compactMap { key in defined.first { $0.key == key } }
    }
}
