import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// How a configuration object is kept in its table (`cohorts`, `metrics`).
protocol StoredConfigObject: ConfigObject {
    /// `SELECT <columns> FROM <table>` decodes with `decode`; fixed SQL text.
    static var selectAll: String { get }
    /// Every row, each read on its own: one this version cannot read is `.unreadable`.
    static func decode(_ rows: PostgresRowSequence) async throws -> [StoredRow<Self>]
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
    let decode: @Sendable (PostgresRowSequence) async throws -> [StoredRow<Object>]
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

/// A stored row as read, with the revision and creation time every row has, so that a `PUT`
/// can repair one that cannot be read.
struct StoredRow<Object: Sendable>: Sendable {
    var stored: Stored<Object>
    var revision: Int
    var createdAt: Date
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
        try await write(key, ifMatch: ifMatch, actor: actor, now: now, repairs: true) { _ in body }
    }

    /// A JSON merge patch (RFC 7396) of the object `key`, which must exist: merged into it in the
    /// same transaction, then validated and written as that `PUT` would be.
    public func patch(_ key: String, patch: JSON, ifMatch: Int?, actor: String?, now: Date = Date()) async throws -> Object {
        try await write(key, ifMatch: ifMatch, actor: actor, now: now, repairs: false) { current in
            guard let current else { throw AviaryError.notFound("\(Object.kind) \"\(key)\" does not exist") }
            return current.json.applying(mergePatch: patch)
        }.0
    }

    /// One `PUT` of the object `key` under the configuration lock: the document `body` makes of
    /// the stored object (nil when there is none), validated, written, audited. A row that cannot
    /// be read is written over only when the write `repairs` (a whole document), else refused.
    private func write(
        _ key: String, ifMatch: Int?, actor: String?, now: Date, repairs: Bool, body: @Sendable (Object?) throws -> JSON
    ) async throws -> (Object, PutOutcome) {
        try await database.configTransaction { connection in
            let row = try await fetch(key, on: connection)
            if let unreadable = row?.stored.unreadable, !repairs { throw unreadable.refusal }
            let current = row?.stored.object
            let parsed = try await table.validated(try body(current), key, connection, logger)
            // A whole valid document repairs a row that cannot be read: it replaces it as it
            // would replace the object the row held, at the row's revision.
            let before = current ?? row.map { row in
                var standIn = parsed
                (standIn.revision, standIn.createdAt) = (row.revision, row.createdAt)
                return standIn
            }
            let change = try Object.put(parsed, over: before, ifMatch: ifMatch, now: now)
            try await save(change, key: key, on: connection, actor: actor)
            return (change.object!, change.outcome)
        }
    }

    /// Deletes the object `key`; refused while something uses it. Also repairs a row that
    /// cannot be read, by removing it.
    public func delete(_ key: String, actor: String?) async throws {
        try await database.configTransaction { connection in
            let users = try await table.users(key, connection, logger)
            let row = try await fetch(key, on: connection)
            if row?.stored.unreadable != nil {
                try Object.refuseDeleting(key, whileUsedBy: users)
                try await save(ConfigObjectChange(object: nil, before: nil), key: key, on: connection, actor: actor)
                return
            }
            let change = try Object.delete(row?.stored.object, key: key, usedBy: users)
            try await save(change, key: key, on: connection, actor: actor)
        }
    }

    /// The object `key`; one whose row cannot be read is `409 stored_object_unreadable`.
    public func get(_ key: String) async throws -> Object {
        try await database.withConnection { connection in
            switch try await fetch(key, on: connection)?.stored {
            case .readable(let object)?: return object
            case .unreadable(let unreadable)?: throw unreadable.refusal
            case nil: throw AviaryError.notFound("\(Object.kind) \"\(key)\" does not exist")
            }
        }
    }

    /// The readable objects; rows that cannot be read are left out (`/readyz` lists them).
    public func list() async throws -> [Object] {
        try await database.query(PostgresQuery(unsafeSQL: table.selectAll + " ORDER BY key")) { try await table.decode($0) }
            .compactMap(\.stored.object)
    }

    func fetch(_ key: String, on connection: PostgresConnection) async throws -> StoredRow<Object>? {
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

    static func decode(_ rows: PostgresRowSequence) async throws -> [StoredRow<Cohort>] {
        var result: [StoredRow<Cohort>] = []
        for try await (key, name, description, conditionText, revision, createdAt, updatedAt) in rows.decode(
            (String, String, String, String, Int, Date, Date).self)
        {
            var issues = IssueCollector()
            let stored: Stored<Cohort>
            if let document = try? JSON.stored(conditionText),
                let condition = ConditionParser(knownCohorts: nil).parse(document, at: JSONPath.root["condition"], issues: &issues), issues.isEmpty
            {
                stored = .readable(
                    Cohort(key: key, name: name, description: description, condition: condition, revision: revision, createdAt: createdAt, updatedAt: updatedAt))
            } else {
                let problem = issues.isEmpty ? "its condition is not JSON" : ValidationFailure.summary(issues.issues)
                stored = .unreadable(UnreadableObject(kind: .cohort, key: key, problem: problem))
            }
            result.append(StoredRow(stored: stored, revision: revision, createdAt: createdAt))
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

    static func decode(_ rows: PostgresRowSequence) async throws -> [StoredRow<Metric>] {
        var result: [StoredRow<Metric>] = []
        for try await (key, definition, revision, createdAt, updatedAt) in rows.decode((String, String, Int, Date, Date).self) {
            let stored: Stored<Metric>
            switch (try? JSON.stored(definition)).map({ MetricValidator.validate($0, key: key) }) {
            case .success(var metric)?:
                metric.revision = revision
                metric.createdAt = createdAt
                metric.updatedAt = updatedAt
                stored = .readable(metric)
            case .failure(let failure)?: stored = .unreadable(UnreadableObject(kind: .metric, key: key, problem: failure.summary))
            case nil: stored = .unreadable(UnreadableObject(kind: .metric, key: key, problem: "its definition is not JSON"))
            }
            result.append(StoredRow(stored: stored, revision: revision, createdAt: createdAt))
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
