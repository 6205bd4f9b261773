import AviaryCore
import Foundation
import PostgresNIO

/// Rollouts (docs/api.md, "Rollouts"): the live rollouts and their history. Transitions are
/// commands (`Experiment.apply`), written with the experiment change they make by `execute`.
extension ExperimentRepository {
    /// Live experiments with a rollout state (for `/metrics`); with `activeOnly`, those the
    /// controller drives: running, with a rollout that is running or waiting for approval.
    public func rollouts(activeOnly: Bool) async throws -> [Experiment] {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.columns) FROM experiments
                WHERE archived_at IS NULL AND rollout_state IS NOT NULL
                  AND (NOT \(activeOnly) OR (status = 'running' AND rollout_state->>'state' IN ('running', 'awaiting_approval')))
                ORDER BY key
                """, logger: logger)
            return try await Self.decode(rows)
        }
    }

    func recordRollout(_ event: RolloutEvent, _ experiment: Experiment, actor: String?, on connection: PostgresConnection) async throws {
        guard experiment.definition.rollout != nil, let state = experiment.rolloutState else { return }
        let readings = JSON.array(state.guardrails.map(\.json))
        try await connection.query(
            """
            INSERT INTO rollout_history (experiment_key, event, step, percent, reason, actor_key_id, guardrails)
            VALUES (\(experiment.key), \(event.event), \(state.step), \(experiment.definition.rolloutPercent ?? 0), \(event.reason), \(actor),
                    \(readings.canonicalString())::jsonb)
            """, logger: logger)
    }

    /// The rollout history, oldest first. A row whose event this version does not know is
    /// left out (and stops nothing else).
    public func rolloutHistory(_ key: String) async throws -> [RolloutHistoryEntry] {
        try await database.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT at, event, step, percent, reason, actor_key_id, guardrails::text FROM rollout_history
                WHERE experiment_key = \(key) ORDER BY id
                """, logger: logger)
            var result: [RolloutHistoryEntry] = []
            for try await (at, event, step, percent, reason, actor, guardrails) in rows.decode((Date, String, Int, Double, String?, String?, String).self) {
                guard let kind = RolloutEventKind(rawValue: event) else { continue }
                let readings = ((try? JSON.stored(guardrails))?.arrayValue ?? []).compactMap(GuardrailReading.init(json:))
                result.append(
                    RolloutHistoryEntry(at: at, event: kind, step: step, percent: percent, reason: reason, actorKeyID: actor, guardrails: readings))
            }
            return result
        }
    }

    static func rolloutStateText(_ experiment: Experiment) -> String? {
        guard let plan = experiment.definition.rollout, let state = experiment.rolloutState else { return nil }
        return state.storageJSON(plan: plan).canonicalString()
    }
}
