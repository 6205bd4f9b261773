import AviaryCore
import Foundation
import PostgresNIO

/// Rollouts (SPEC 9): lifecycle effects, approvals, the controller's transitions and history.
/// Every transition is written with the experiment change it makes, in one configuration
/// transaction, and announced by the same `NOTIFY` as any configuration write.
extension ExperimentRepository {
    /// One row of the rollout history.
    public struct RolloutEvent: Sendable, Hashable {
        public var event: String
        public var reason: String?
    }

    /// What a lifecycle action does to a rollout: start sets the first step's weight, pause
    /// holds the step clock, resume restarts it, rollback returns the rolled weight to the
    /// control. Returns the history event, if any.
    static func applyLifecycle(_ action: LifecycleAction, to experiment: inout Experiment, reason: String?, now: Date) -> RolloutEvent? {
        guard let plan = experiment.definition.rollout else { return nil }
        switch action {
        case .start:
            if let first = plan.steps.first, let stepped = experiment.definition.withRolloutPercent(first) {
                experiment.definition = stepped
            }
            experiment.rolloutState = RolloutState(stepStartedAt: now)
            return RolloutEvent(event: "started", reason: nil)
        case .pause:
            guard var state = experiment.rolloutState, state.phase == .running || state.phase == .awaitingApproval else { return nil }
            state.elapsedBeforePause = state.elapsed(at: now)
            state.phase = .paused
            experiment.rolloutState = state
            return RolloutEvent(event: "paused", reason: reason)
        case .resume:
            guard var state = experiment.rolloutState, state.phase == .paused else { return nil }
            state.phase = .running
            state.stepStartedAt = now
            state.reason = nil
            experiment.rolloutState = state
            return RolloutEvent(event: "resumed", reason: nil)
        case .rollback:
            if let zero = experiment.definition.withRolloutPercent(0) { experiment.definition = zero }
            var state = experiment.rolloutState ?? RolloutState(stepStartedAt: now)
            state.phase = .rolledBack
            state.reason = reason ?? "rolled back by hand"
            experiment.rolloutState = state
            return RolloutEvent(event: "rolled_back", reason: state.reason)
        case .stop:
            return nil
        }
    }

    /// Puts a replacement definition in place. Once a rollout has started, the rolled
    /// variant keeps its current share (its step's, or 0 once rolled back) whatever weights the
    /// new document carries — a rollout moves those weights, not the editor — and a step beyond
    /// the new plan's last is held at that last step. Removing the rollout drops its state.
    static func replaceDefinition(of experiment: inout Experiment, with definition: ExperimentDefinition) {
        experiment.definition = definition
        guard let plan = definition.rollout, !plan.steps.isEmpty else {
            experiment.rolloutState = nil
            return
        }
        guard var state = experiment.rolloutState else { return }
        state.step = min(state.step, plan.steps.count - 1)
        let percent = state.phase == .rolledBack ? 0 : plan.steps[state.step]
        experiment.definition = definition.withRolloutPercent(percent) ?? definition
        experiment.rolloutState = state
    }

    /// Passes the gate before the next step: at once when the rollout waits at it, or ahead of
    /// time (the controller then passes it when the step is done).
    public func approveRollout(_ key: String, actor: String?) async throws -> Experiment {
        try await database.configTransaction { connection in
            guard var experiment = try await fetch(key, on: connection, forUpdate: true), !experiment.isArchived else {
                throw AviaryError.notFound("experiment \"\(key)\" does not exist")
            }
            guard let plan = experiment.definition.rollout, var state = experiment.rolloutState, experiment.status == .running,
                  state.phase == .running || state.phase == .awaitingApproval
            else {
                throw AviaryError.illegalTransition("experiment \"\(key)\" has no running rollout to approve")
            }
            let before = experiment
            let now = Date()
            state.approved = true
            experiment.rolloutState = state
            var event = RolloutEvent(event: "approved", reason: nil)
            if state.phase == .awaitingApproval {
                Self.apply(state.step + 1 < plan.steps.count ? .advance(to: state.step + 1) : .complete, to: &experiment, now: now)
                event = RolloutEvent(event: "approved", reason: "step \(experiment.rolloutState!.step) entered on approval")
            }
            try await save(&experiment, action: "rollout.approve", before: before, actor: actor, on: connection)
            try await recordRollout(event, experiment, actor: actor, on: connection)
            return experiment
        }
    }

    /// Live experiments with a rollout state (for `/metrics`); with `activeOnly`, those the
    /// controller drives: running, with a rollout that is running or waiting for approval.
    public func rollouts(activeOnly: Bool) async throws -> [Experiment] {
        try await database.client.withConnection { connection in
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

    /// Applies the controller's decision if the rollout is still where it was decided from
    /// (same revision); `false` when something changed meanwhile (the next tick decides again).
    /// Readings are stored on every tick, without a new revision when nothing else changes.
    public func applyRollout(
        _ key: String, decidedAt revision: Int, decision: RolloutDecision, readings: [GuardrailReading], now: Date = Date()
    ) async throws -> (applied: Bool, experiment: Experiment?) {
        try await database.configTransaction { connection in
            guard var experiment = try await fetch(key, on: connection, forUpdate: true), experiment.revision == revision,
                  experiment.status == .running, experiment.rolloutState != nil
            else { return (false, nil) }
            let before = experiment
            experiment.rolloutState!.guardrails = readings
            let event = Self.apply(decision, to: &experiment, now: now)
            guard let event else {
                // Only the readings changed: no revision, no NOTIFY.
                try await connection.query(
                    "UPDATE experiments SET rollout_state = \(Self.rolloutStateText(experiment))::jsonb WHERE key = \(key)", logger: logger)
                return (true, experiment)
            }
            try await save(&experiment, action: "rollout.\(event.event)", before: before, actor: nil, on: connection)
            try await recordRollout(event, experiment, actor: nil, on: connection)
            return (true, experiment)
        }
    }

    /// A decision's effect on the experiment; the history event, or nil for `wait`.
    @discardableResult
    static func apply(_ decision: RolloutDecision, to experiment: inout Experiment, now: Date) -> RolloutEvent? {
        guard let plan = experiment.definition.rollout, var state = experiment.rolloutState else { return nil }
        defer { experiment.rolloutState = state }
        switch decision {
        case .wait:
            return nil
        case .advance(let to):
            guard plan.steps.indices.contains(to), let stepped = experiment.definition.withRolloutPercent(plan.steps[to]) else { return nil }
            experiment.definition = stepped
            state.phase = .running
            state.step = to
            state.stepStartedAt = now
            state.elapsedBeforePause = 0
            state.approved = false
            return RolloutEvent(event: "advanced", reason: nil)
        case .awaitApproval:
            state.phase = .awaitingApproval
            return RolloutEvent(event: "awaiting_approval", reason: nil)
        case .complete:
            state.phase = .completed
            return RolloutEvent(event: "completed", reason: nil)
        case .rollback(let reason):
            if let zero = experiment.definition.withRolloutPercent(0) { experiment.definition = zero }
            experiment.status = .rolledBack
            state.phase = .rolledBack
            state.reason = reason
            return RolloutEvent(event: "rolled_back", reason: reason)
        case .pause(let reason):
            experiment.status = .paused
            state.elapsedBeforePause = state.elapsed(at: now)
            state.phase = .paused
            state.reason = reason
            return RolloutEvent(event: "paused", reason: reason)
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

    /// The rollout history, oldest first, as the report shows it.
    public func rolloutHistory(_ key: String) async throws -> [JSON] {
        try await database.client.withConnection { connection in
            let rows = try await connection.query(
                """
                SELECT at, event, step, percent, reason, actor_key_id, guardrails::text FROM rollout_history
                WHERE experiment_key = \(key) ORDER BY id
                """, logger: logger)
            var result: [JSON] = []
            for try await (at, event, step, percent, reason, actor, guardrails) in rows.decode((Date, String, Int, Double, String?, String?, String).self) {
                result.append([
                    "at": .string(Timestamp.format(at)), "event": .string(event), "step": .number(Double(step)), "percent": .number(percent),
                    "reason": reason.map(JSON.string) ?? .null, "actor_key_id": actor.map(JSON.string) ?? .null,
                    "guardrails": (try? JSON.stored(guardrails)) ?? .array([]),
                ])
            }
            return result
        }
    }

    static func rolloutStateText(_ experiment: Experiment) -> String? {
        guard let plan = experiment.definition.rollout, let state = experiment.rolloutState else { return nil }
        return state.storageJSON(plan: plan).canonicalString()
    }
}
