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
            let current = try await fetch(key, on: connection, forUpdate: true, repairing: command)
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
        try await database.withConnection { connection in
            guard let e = try await fetch(key, on: connection, forUpdate: false) else { throw AviaryError.notFound("experiment \"\(key)\" does not exist") }
            return e
        }
    }

    public func list(status: ExperimentStatus?, includeArchived: Bool) async throws -> [Experiment] {
        try await database.query(
            """
            SELECT \(unescaped: Self.columns) FROM experiments
            WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)) AND (\(includeArchived) OR archived_at IS NULL)
            ORDER BY key
            """) { try await Self.decode($0) }
    }

    public func revisions(_ key: String) async throws -> [ExperimentRevision] {
        try await database.withConnection { connection in
            // Also of an experiment whose stored row cannot be read: its history shows what to repair it with.
            try await requireExisting(key, on: connection)
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

    /// Throws `notFound` unless a row for experiment `key` exists, readable or not.
    public func requireExisting(_ key: String) async throws {
        try await database.withConnection { try await requireExisting(key, on: $0) }
    }

    func requireExisting(_ key: String, on connection: PostgresConnection) async throws {
        guard try await connection.query("SELECT 1 FROM experiments WHERE key = \(key)", logger: logger).value(Int.self) != nil else {
            throw AviaryError.notFound("experiment \"\(key)\" does not exist")
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
        // The notice commits with the change it announces, or not at all (the outbox).
        if let notice = RolloutNotice(change) { try await database.notices.insert(notice, on: connection) }
        try await notifyConfigChanged(on: connection, logger: logger, what: "experiment")
    }

    /// The stored experiment `key`, nil when there is none; one that cannot be read is
    /// `AviaryError.storedObjectUnreadable`, unless `repairing` names the command that will
    /// write over it (`Experiment.repairTarget`).
    func fetch(_ key: String, on connection: PostgresConnection, forUpdate: Bool, repairing command: ExperimentCommand? = nil) async throws -> Experiment? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM experiments WHERE key = \(key) \(unescaped: forUpdate ? "FOR UPDATE" : "")", logger: logger)
        guard let row = try await Self.decodeRows(rows).first else { return nil }
        switch row.stored {
        case .readable(let experiment): return experiment
        case .unreadable(let unreadable):
            guard let command, let standIn = row.standIn else { throw unreadable.refusal }
            return try Experiment.repairTarget(for: command, unreadable: unreadable, standIn: standIn)
        }
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

    /// An experiment row as read. An unreadable one carries a stand-in with the row's status,
    /// revision and times: its control served to everyone when the stored document still names
    /// one (`Experiment.controlOnly`, which assignment may serve), else a bare one that only a
    /// repair writes over.
    struct Row: Sendable {
        var stored: Stored<Experiment>
        var standIn: Experiment?
        var standInServesControl = false
    }

    /// The readable experiments of `rows`; unreadable ones are left out (lists, rollouts).
    static func decode(_ rows: PostgresRowSequence) async throws -> [Experiment] {
        try await decodeRows(rows).compactMap(\.stored.object)
    }

    /// Every row of `rows`, each read on its own: one that this version cannot read — a
    /// definition its validator refuses, an unknown status, an unreadable rollout state — is
    /// `.unreadable` with the validator's message, and never stops the others.
    static func decodeRows(_ rows: PostgresRowSequence) async throws -> [Row] {
        var result: [Row] = []
        for try await (key, definition, status, winner, revision, createdAt, updatedAt, archivedAt, rolloutState) in rows.decode(
            (String, String, String, String?, Int, Date, Date, Date?, String?).self)
        {
            let document = try? JSON.stored(definition)
            var problem: String?
            var experiment: Experiment?
            switch document.map({ ExperimentValidator.validate($0, expectedKey: key, context: .init(knownCohorts: nil)) }) {
            case nil: problem = "its definition is not JSON"
            case .failure(let failure)?: problem = failure.summary
            case .success(let d)?:
                if let s = ExperimentStatus(rawValue: status) {
                    let state = rolloutState.flatMap { try? JSON.stored($0) }.flatMap(RolloutState.init(storage:))
                    if rolloutState != nil, state == nil {
                        problem = "its rollout state cannot be read"
                    } else {
                        experiment = Experiment(
                            definition: d, status: s, winner: winner, revision: revision, createdAt: createdAt, updatedAt: updatedAt,
                            archivedAt: archivedAt, rolloutState: state)
                    }
                } else {
                    problem = "its status \"\(status.prefix(40))\" is not one of \(ExperimentStatus.allCases.map(\.rawValue).joined(separator: ", "))"
                }
            }
            if let experiment {
                result.append(Row(stored: .readable(experiment)))
                continue
            }
            let storedStatus = ExperimentStatus(rawValue: status) ?? .draft
            let controlOnly = Experiment.controlOnly(
                key: key, document: document, status: storedStatus, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
            var standIn = controlOnly ?? Experiment(
                definition: ExperimentDefinition(key: key, variants: [Variant(key: "control", value: .null)], control: "control", rules: []),
                status: storedStatus, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
            standIn.archivedAt = archivedAt
            standIn.winner = winner.flatMap { standIn.definition.variant($0) == nil ? nil : $0 }
            result.append(
                Row(
                    stored: .unreadable(UnreadableObject(kind: .experiment, key: key, problem: problem ?? "it cannot be read")), standIn: standIn,
                    standInServesControl: controlOnly != nil))
        }
        return result
    }
}
