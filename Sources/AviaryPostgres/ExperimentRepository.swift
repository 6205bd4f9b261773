import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Experiments, their revision history and lifecycle, each write audited in the same transaction.
public struct ExperimentRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    static let columns = "key, definition::text, status, winner, revision, created_at, updated_at, archived_at, rollout_state::text"

    public func create(_ body: JSON, actor: String?) async throws -> Experiment {
        try await database.configTransaction { connection in
            let context = try await validationContext(on: connection)
            let definition = try Self.validated(ExperimentValidator.validate(body, context: context))
            if let existing = try await fetch(definition.key, on: connection, forUpdate: true) {
                throw AviaryError.conflict(
                    existing.isArchived
                        ? "experiment \"\(definition.key)\" exists (archived); keys are never reused"
                        : "experiment \"\(definition.key)\" already exists")
            }
            let now = Date()
            let experiment = Experiment(definition: definition, status: .draft, revision: 1, createdAt: now, updatedAt: now)
            try await connection.query(
                """
                INSERT INTO experiments (key, definition, status, winner, revision, cohort_refs, layer, layer_start, layer_end, created_at, updated_at)
                VALUES (\(definition.key), \(JSON.object(definition.json).canonicalString())::jsonb, \(experiment.status.rawValue), NULL, 1,
                        \(Array(definition.cohortReferences).sorted()), \(definition.layer), \(definition.layerRange?.start), \(definition.layerRange?.end),
                        \(now), \(now))
                """, logger: logger)
            try await record(experiment, action: "create", before: nil, actor: actor, on: connection)
            return experiment
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

    /// Replaces the definition; `ifMatch` must name the current revision.
    public func replace(_ key: String, with body: JSON, ifMatch: Int?, actor: String?) async throws -> Experiment {
        guard let ifMatch else {
            throw AviaryError.preconditionRequired("PUT needs If-Match: \"<revision>\" naming the revision you read")
        }
        return try await database.configTransaction { connection in
            var experiment = try await current(key, ifMatch: ifMatch, on: connection)
            let context = try await validationContext(on: connection)
            let definition = try Self.validated(ExperimentValidator.validate(body, expectedKey: key, context: context))
            let before = experiment
            Self.replaceDefinition(of: &experiment, with: definition)
            if let winner = experiment.winner, definition.variant(winner) == nil {
                throw AviaryError.invalid(
                    code: "invalid_experiment",
                    issues: [ValidationIssue(path: "variants", message: "winner \"\(winner)\" of this stopped experiment must stay a variant")])
            }
            try await save(&experiment, action: "update", before: before, actor: actor, on: connection)
            return experiment
        }
    }

    /// Archives the experiment: it disappears from lists and assignment, and its key stays taken.
    public func archive(_ key: String, ifMatch: Int?, actor: String?) async throws -> Experiment {
        try await database.configTransaction { connection in
            var experiment = try await current(key, ifMatch: ifMatch, on: connection)
            let before = experiment
            experiment.archivedAt = Date()
            try await save(&experiment, action: "archive", before: before, actor: actor, on: connection)
            return experiment
        }
    }

    /// Applies a lifecycle action; only the transitions of `LifecycleAction.target(from:)` are legal.
    public func transition(
        _ key: String, action: LifecycleAction, winner: String?, reason: String? = nil, ifMatch: Int?, actor: String?
    ) async throws -> Experiment {
        try await database.configTransaction { connection in
            var experiment = try await current(key, ifMatch: ifMatch, on: connection)
            guard let target = action.target(from: experiment.status) else {
                let allowed = action.allowedFrom.map(\.rawValue).joined(separator: " or ")
                throw AviaryError.illegalTransition(
                    "cannot \(action.rawValue) experiment \"\(key)\": it is \(experiment.status.rawValue), and \(action.rawValue) needs \(allowed)")
            }
            if let winner {
                guard action == .stop else {
                    throw AviaryError.invalid(code: "invalid_request", issues: [ValidationIssue(path: "winner", message: "only stop takes a winner")])
                }
                guard experiment.definition.variant(winner) != nil else {
                    throw AviaryError.invalid(
                        code: "invalid_request", issues: [ValidationIssue(path: "winner", message: "\"\(winner)\" is not one of the variants")])
                }
            }
            let before = experiment
            experiment.status = target
            if action == .stop { experiment.winner = winner }
            let event = Self.applyLifecycle(action, to: &experiment, reason: reason, now: Date())
            try await save(&experiment, action: action.rawValue, before: before, actor: actor, on: connection)
            if let event { try await recordRollout(event, experiment, actor: actor, on: connection) }
            return experiment
        }
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

    static func validated(_ result: Result<ExperimentDefinition, ValidationFailure>) throws -> ExperimentDefinition {
        switch result {
        case .success(let d): return d
        case .failure(let f): throw AviaryError.invalid(code: "invalid_experiment", issues: f.issues)
        }
    }

    /// Loads a live experiment for a write, enforcing existence, not archived and `If-Match`.
    private func current(_ key: String, ifMatch: Int?, on connection: PostgresConnection) async throws -> Experiment {
        guard let experiment = try await fetch(key, on: connection, forUpdate: true) else {
            throw AviaryError.notFound("experiment \"\(key)\" does not exist")
        }
        if experiment.isArchived { throw AviaryError.conflict("experiment \"\(key)\" is archived") }
        if let ifMatch, ifMatch != experiment.revision { throw AviaryError.preconditionFailed(current: experiment.revision) }
        return experiment
    }

    func save(_ experiment: inout Experiment, action: String, before: Experiment, actor: String?, on connection: PostgresConnection) async throws {
        experiment.revision += 1
        experiment.updatedAt = Date()
        let d = experiment.definition
        try await connection.query(
            """
            UPDATE experiments SET definition = \(JSON.object(d.json).canonicalString())::jsonb, status = \(experiment.status.rawValue),
                winner = \(experiment.winner), revision = \(experiment.revision), cohort_refs = \(Array(d.cohortReferences).sorted()),
                layer = \(d.layer), layer_start = \(d.layerRange?.start), layer_end = \(d.layerRange?.end),
                updated_at = \(experiment.updatedAt), archived_at = \(experiment.archivedAt),
                rollout_state = \(Self.rolloutStateText(experiment))::jsonb
            WHERE key = \(d.key)
            """, logger: logger)
        try await record(experiment, action: action, before: before, actor: actor, on: connection)
    }

    private func record(_ experiment: Experiment, action: String, before: Experiment?, actor: String?, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO experiment_revisions (experiment_key, revision, action, definition, status, winner, actor_key_id, at)
            VALUES (\(experiment.key), \(experiment.revision), \(action), \(JSON.object(experiment.definition.json).canonicalString())::jsonb,
                    \(experiment.status.rawValue), \(experiment.winner), \(actor), \(experiment.updatedAt))
            """, logger: logger)
        try await insertAudit(
            on: connection, logger: logger, actor: actor, action: "experiment.\(action)", targetType: "experiment", targetKey: experiment.key,
            experiment: experiment.key, before: before?.json, after: experiment.json)
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
