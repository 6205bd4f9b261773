import Foundation

/// What a rollout does to an experiment: the rolled variant's weight, the effect of lifecycle
/// actions and of the leader's decisions, and a replacement definition's. All pure; commands
/// (`Experiment.apply`) call them.
extension ExperimentDefinition {
    /// The definition with the rolled variant at `percent` of the catch-all rule's split: only
    /// the rolled variant's and the control's weights move, so their sum stays and no other
    /// variant changes. Nil without a rollout or a catch-all split holding the control, or when
    /// the two do not hold `percent` together.
    public func withRolloutPercent(_ percent: Double) -> ExperimentDefinition? {
        guard let rollout, let index = rules.indices.last, rules[index].when == nil,
              case .split(var split) = rules[index].serve, let target = Percent.hundredths(percent),
              let controlIndex = split.firstIndex(where: { $0.variant == control })
        else { return nil }
        if !split.contains(where: { $0.variant == rollout.variant }) {
            split.append(SplitEntry(variant: rollout.variant, weight: 0))
        }
        let rolledIndex = split.firstIndex { $0.variant == rollout.variant }!
        let shared = split[controlIndex].weight + split[rolledIndex].weight
        guard target <= shared else { return nil }
        split[rolledIndex].weight = target
        split[controlIndex].weight = shared - target
        var copy = self
        copy.rules[index].serve = .split(split)
        return copy
    }

    /// The rolled variant's share of the catch-all split now, in percent.
    public var rolloutPercent: Double? {
        guard let rollout, let rule = rules.last, rule.when == nil, case .split(let split) = rule.serve else { return nil }
        return Percent.toDouble(split.filter { $0.variant == rollout.variant }.reduce(0) { $0 + $1.weight })
    }
}

extension Experiment {
    /// What a lifecycle action does to a rollout: start sets the first step's weight, pause
    /// holds the step clock, resume restarts it, rollback returns the rolled weight to the
    /// control. Returns the history event, if any.
    mutating func applyToRollout(_ action: LifecycleAction, reason: String?, now: Date) -> RolloutEvent? {
        guard let plan = definition.rollout else { return nil }
        switch action {
        case .start:
            if let first = plan.steps.first, let stepped = definition.withRolloutPercent(first) { definition = stepped }
            rolloutState = RolloutState(stepStartedAt: now)
            return RolloutEvent(.started)
        case .pause:
            guard var state = rolloutState, state.phase == .running || state.phase == .awaitingApproval else { return nil }
            state.elapsedBeforePause = state.elapsed(at: now)
            state.phase = .paused
            rolloutState = state
            return RolloutEvent(.paused, reason: reason)
        case .resume:
            guard var state = rolloutState, state.phase == .paused else { return nil }
            state.phase = .running
            state.stepStartedAt = now
            state.reason = nil
            rolloutState = state
            return RolloutEvent(.resumed)
        case .rollback:
            if let zero = definition.withRolloutPercent(0) { definition = zero }
            var state = rolloutState ?? RolloutState(stepStartedAt: now)
            state.phase = .rolledBack
            state.reason = reason ?? "rolled back by hand"
            rolloutState = state
            return RolloutEvent(.rolledBack, reason: state.reason)
        case .stop:
            return nil
        }
    }

    /// Puts a replacement definition in place. Once a rollout has started, the rolled variant
    /// keeps its current share (its step's, or 0 once rolled back) whatever weights the new
    /// document carries — a rollout moves those weights, not the editor — and a step beyond the
    /// new plan's last is held at that last step. Removing the rollout drops its state.
    mutating func replaceDefinition(with new: ExperimentDefinition) {
        definition = new
        guard let plan = new.rollout, !plan.steps.isEmpty else {
            rolloutState = nil
            return
        }
        guard var state = rolloutState else { return }
        state.step = min(state.step, plan.steps.count - 1)
        let percent = state.phase == .rolledBack ? 0 : plan.steps[state.step]
        definition = new.withRolloutPercent(percent) ?? new
        rolloutState = state
    }

    /// A leader's decision's effect; the history event, or nil for `wait`.
    @discardableResult
    mutating func apply(_ decision: RolloutDecision, now: Date) -> RolloutEvent? {
        guard let plan = definition.rollout, var state = rolloutState else { return nil }
        defer { rolloutState = state }
        switch decision {
        case .wait:
            return nil
        case .advance(let to):
            guard plan.steps.indices.contains(to), let stepped = definition.withRolloutPercent(plan.steps[to]) else { return nil }
            definition = stepped
            state.phase = .running
            state.step = to
            state.stepStartedAt = now
            state.elapsedBeforePause = 0
            state.approved = false
            return RolloutEvent(.advanced)
        case .awaitApproval:
            state.phase = .awaitingApproval
            return RolloutEvent(.awaitingApproval)
        case .complete:
            state.phase = .completed
            return RolloutEvent(.completed)
        case .rollback(let reason):
            if let zero = definition.withRolloutPercent(0) { definition = zero }
            status = .rolledBack
            state.phase = .rolledBack
            state.reason = reason
            return RolloutEvent(.rolledBack, reason: reason)
        case .pause(let reason):
            status = .paused
            state.elapsedBeforePause = state.elapsed(at: now)
            state.phase = .paused
            state.reason = reason
            return RolloutEvent(.paused, reason: reason)
        }
    }
}
