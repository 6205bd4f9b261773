import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Experiments, their revision history and lifecycle, each write audited in the same transaction.
public struct ExperimentRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    static let columns = "key, definition::text, status, winner, revision, created_at, updated_at, archived_at, rollout_state::text"

    /// Runs one command as one unit of work, in one transaction under the configuration lock:
    /// load the experiment `key` for update, apply the command (`Experiment.apply`, where every
    /// rule of a write lives), save the result with its revision and audit line, record the
    /// rollout's history and `NOTIFY` every replica. Nil when a rollout decision came too late.
    /// `notifyHosts` limits where a definition's rollout notices may go.
    public func execute(
        _ command: ExperimentCommand, key: String, actor: String?, now: Date = Date(), notifyHosts: NotifyHosts? = nil
    ) async throws -> ExperimentChange? {
        try await database.configTransaction { connection in
            let current = try await fetch(key, on: connection, forUpdate: true)
            var validation = command.validatesDefinition ? try await validationContext(on: connection) : ExperimentValidationContext(knownCohorts: nil)
            validation.notifyHosts = notifyHosts
            guard let change = try Experiment.apply(command, key: key, to: current, context: CommandContext(validation: validation, now: now)) else {
                return nil
            }
            try await store(change, actor: actor, on: connection)
            return change
        }
    }

    public func get(_ key: String) async throws -> Experiment {
        try await database.client.withConnection { connection in
            guard let e = try await fetch(key, on: connection, forUpdate: false) else { throw AviaryError.notFound("experiment \"\(key)\" does not exist") }
            return e
        }
    }

    public func list(status: ExperimentStatus?, includeArchived: Bool) async throws -> [Experiment] {
        let rows = try await database.client.query(
            """
            SELECT \(unescaped: Self.columns) FROM experiments
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)) AND (\(includeArchived) OR archived_at IS NULL)
            ORDER BY key
            """, logger: logger)
        return try await Self.decode(rows)
    }

    public func revisions(_ key: String) async throws -> [ExperimentRevision] {
        try await database.client.withConnection { connection in
            guard try await fetch(key, on: connection, forUpdate: false) != nil else {
                throw AviaryError.notFound("experiment \"\(key)\" does not exist")
            }
            let rows = try await connection.query(
                """
                SELECT revision, action, definition::text, status, winner, actor_key_id, at
                FROM experiment_revisions WHERE experiment_key = \(key) ORDER BY revision
                """, logger: logger)
            var result: [ExperimentRevision] = []
            for try await (revision, action, definition, status, winner, actor, at) in rows.decode(
                (Int, String, String, String, String?, String?, Date).self)
            {
                var document = try JSON.stored(definition).objectValue ?? [:]
                document["status"] = .string(status)
                document["winner"] = winner.map(JSON.string) ?? .null
                document["revision"] = .number(Double(revision))
                result.append(ExperimentRevision(revision: revision, action: action, experiment: .object(document), actorKeyID: actor, at: at))
            }
            return result
        }
    }

    // MARK: internals

    /// Writes a change: the experiment row (inserted or updated), its revision, the audit line,
    /// the rollout's history and the notice. A change of guardrail readings alone updates the
    /// rollout state and nothing else.
    private func store(_ change: ExperimentChange, actor: String?, on connection: PostgresConnection) async throws {
        let experiment = change.experiment
        let d = experiment.definition
        guard let action = change.action else {
            try await connection.query(
                "UPDATE experiments SET rollout_state = \(Self.rolloutStateText(experiment))::jsonb WHERE key = \(d.key)", logger: logger)
            return
        }
        try await connection.query(
            """
            INSERT INTO experiments (key, definition, status, winner, revision, cohort_refs, layer, layer_start, layer_end, created_at, updated_at,
                                     archived_at, rollout_state)
            VALUES (\(d.key), \(JSON.object(d.json).canonicalString())::jsonb, \(experiment.status.rawValue), \(experiment.winner), \(experiment.revision),
                    \(Array(d.cohortReferences).sorted()), \(d.layer), \(d.layerRange?.start), \(d.layerRange?.end), \(experiment.createdAt),
                    \(experiment.updatedAt), \(experiment.archivedAt), \(Self.rolloutStateText(experiment))::jsonb)
            ON CONFLICT (key) DO UPDATE SET definition = excluded.definition, status = excluded.status, winner = excluded.winner,
                revision = excluded.revision, cohort_refs = excluded.cohort_refs, layer = excluded.layer, layer_start = excluded.layer_start,
                layer_end = excluded.layer_end, updated_at = excluded.updated_at, archived_at = excluded.archived_at,
                rollout_state = excluded.rollout_state
            """, logger: logger)
        try await connection.query(
            """
            INSERT INTO experiment_revisions (experiment_key, revision, action, definition, status, winner, actor_key_id, at)
            VALUES (\(experiment.key), \(experiment.revision), \(action), \(JSON.object(d.json).canonicalString())::jsonb,
                    \(experiment.status.rawValue), \(experiment.winner), \(actor), \(experiment.updatedAt))
            """, logger: logger)
        try await insertAudit(
            on: connection, logger: logger, actor: actor, action: "experiment.\(action)", targetType: "experiment", targetKey: experiment.key,
            experiment: experiment.key, before: change.before?.json, after: experiment.json)
        if let event = change.rolloutEvent { try await recordRollout(event, experiment, actor: actor, on: connection) }
        try await notifyConfigChanged(on: connection, logger: logger, what: "experiment")
    }

    func fetch(_ key: String, on connection: PostgresConnection, forUpdate: Bool) async throws -> Experiment? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM experiments WHERE key = \(key) \(unescaped: forUpdate ? "FOR UPDATE" : "")", logger: logger)
        return try await Self.decode(rows).first
    }

    private func validationContext(on connection: PostgresConnection) async throws -> ExperimentValidationContext {
        var cohorts: Set<String> = []
        for try await key in try await connection.query("SELECT key FROM cohorts", logger: logger).decode(String.self) {
            cohorts.insert(key)
        }
        var occupants: [ExperimentValidationContext.LayerOccupant] = []
        let rows = try await connection.query(
            "SELECT key, layer, layer_start, layer_end FROM experiments WHERE layer IS NOT NULL AND archived_at IS NULL", logger: logger)
        for try await (key, layer, start, end) in rows.decode((String, String, Int, Int).self) {
            occupants.append(.init(experiment: key, layer: layer, range: LayerRange(start: start, end: end)))
        }
        var metrics: Set<String> = []
        for try await key in try await connection.query("SELECT key FROM metrics", logger: logger).decode(String.self) {
            metrics.insert(key)
        }
        return ExperimentValidationContext(knownCohorts: cohorts, layerOccupants: occupants, knownMetrics: metrics)
    }

    static func decode(_ rows: PostgresRowSequence) async throws -> [Experiment] {
        var result: [Experiment] = []
        for try await (key, definition, status, winner, revision, createdAt, updatedAt, archivedAt, rolloutState) in rows.decode(
            (String, String, String, String?, Int, Date, Date, Date?, String?).self)
        {
            let parsed = ExperimentValidator.validate(try JSON.stored(definition), expectedKey: key, context: .init(knownCohorts: nil))
            guard case .success(let d) = parsed, let s = ExperimentStatus(rawValue: status) else {
                throw StoredDataError(description: "stored experiment \(key) could not be read: \(parsed)")
            }
            let state = try rolloutState.map { try JSON.stored($0) }.flatMap(RolloutState.init(storage:))
            result.append(
                Experiment(
                    definition: d, status: s, winner: winner, revision: revision, createdAt: createdAt, updatedAt: updatedAt,
                    archivedAt: archivedAt, rolloutState: state))
        }
        return result
    }
}
