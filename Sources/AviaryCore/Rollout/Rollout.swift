import Foundation

/// A progressive rollout of one variant (docs/api.md, "Rollouts"): its weight in the catch-all rule walks
/// through `steps` while guardrails hold.
public struct RolloutPlan: Sendable, Hashable {
    public enum OnBreach: String, Sendable, Hashable, CaseIterable {
        case rollback, pause
    }

    /// A limit on one metric of the rolled variant over the current step.
    public struct Guardrail: Sendable, Hashable {
        public enum Bound: Sendable, Hashable {
            /// Absolute: the value must stay at or below / at or above.
            case max(Double), min(Double)
            /// Relative to control: value ≤ control · (1 + x) / value ≥ control · (1 − x).
            case maxIncrease(Double), maxDrop(Double)
        }

        /// How a relative bound is judged (`test`).
        public enum Test: String, Sendable, Hashable, CaseIterable {
            /// The step's value against the bound, at every tick.
            case threshold
            /// Only when the always-valid interval of the difference to the control
            /// (`SequentialTest`) lies wholly beyond the bound: ticking every few seconds
            /// does not make a false breach likely.
            case sequential
        }

        public var metric: String
        public var bound: Bound
        /// Applies to `max_increase` and `max_drop`; `max` and `min` are always thresholds.
        public var test: Test

        public init(metric: String, bound: Bound, test: Test = .threshold) {
            self.metric = metric
            self.bound = bound
            self.test = test
        }
    }

    public var variant: String
    /// Percent of the catch-all rule's traffic for `variant` at each step, strictly increasing in (0, 100].
    public var steps: [Double]
    public var stepSeconds: Int
    /// Step percents that wait for `POST …/rollout/approve` before they are entered.
    public var approvalBefore: Set<Double>
    public var minUnits: Int
    public var onBreach: OnBreach
    public var guardrails: [Guardrail]
    public var notifyURL: String?

    public init(
        variant: String, steps: [Double], stepSeconds: Int, approvalBefore: Set<Double> = [], minUnits: Int = 0,
        onBreach: OnBreach = .rollback, guardrails: [Guardrail] = [], notifyURL: String? = nil
    ) {
        self.variant = variant
        self.steps = steps
        self.stepSeconds = stepSeconds
        self.approvalBefore = approvalBefore
        self.minUnits = minUnits
        self.onBreach = onBreach
        self.guardrails = guardrails
        self.notifyURL = notifyURL
    }
}

/// Where a rollout is (`rollout_state` of docs/api.md, "Rollouts").
public struct RolloutState: Sendable, Hashable {
    public enum Phase: String, Sendable, Hashable, CaseIterable {
        case running
        case awaitingApproval = "awaiting_approval"
        case paused, completed
        case rolledBack = "rolled_back"
    }

    public var phase: Phase
    /// Index into `steps` of the step being served.
    public var step: Int
    /// When the current step began serving (the step clock).
    public var stepStartedAt: Date
    /// Seconds of the current step already served before a pause; the clock resumes from here.
    public var elapsedBeforePause: Double
    /// Why the rollout was rolled back or paused by a guardrail.
    public var reason: String?
    /// Whether the gate before the next step has been passed (an approval may come early).
    public var approved: Bool
    /// The guardrails as last measured.
    public var guardrails: [GuardrailReading]

    public init(
        phase: Phase = .running, step: Int = 0, stepStartedAt: Date, elapsedBeforePause: Double = 0, reason: String? = nil,
        approved: Bool = false, guardrails: [GuardrailReading] = []
    ) {
        self.phase = phase
        self.step = step
        self.stepStartedAt = stepStartedAt
        self.elapsedBeforePause = elapsedBeforePause
        self.reason = reason
        self.approved = approved
        self.guardrails = guardrails
    }

    /// Seconds the current step has served at `now`: never negative, so a clock that jumps
    /// back holds the step instead of shortening it.
    public func elapsed(at now: Date) -> Double {
        guard phase == .running || phase == .awaitingApproval else { return elapsedBeforePause }
        return elapsedBeforePause + max(0, now.timeIntervalSince(stepStartedAt))
    }
}

/// One guardrail as last measured, for `rollout_state.guardrails`.
public struct GuardrailReading: Sendable, Hashable {
    public var metric: String
    /// The rolled variant's value over the current step; nil before there is any.
    public var value: Double?
    public var ok: Bool

    public init(metric: String, value: Double?, ok: Bool) {
        self.metric = metric
        self.value = value
        self.ok = ok
    }
}

extension GuardrailReading {
    public var json: JSON { ["metric": .string(metric), "value": value.map(JSON.number) ?? .null, "ok": .bool(ok)] }
}

/// A guardrail metric measured on the rolled variant (and control) over the current step.
public struct GuardrailObservation: Sendable, Hashable {
    public var value: Double?
    public var controlValue: Double?
    /// The always-valid 95 % interval of value − control (`SequentialTest`), when computable.
    public var difference: ClosedRange<Double>?

    public init(value: Double?, controlValue: Double? = nil, difference: ClosedRange<Double>? = nil) {
        self.value = value
        self.controlValue = controlValue
        self.difference = difference
    }

    /// The observations of a step's report (attributed as `ReportQuery.Attribution.servedAt`), by metric:
    /// the rolled variant's value, the control's, and the interval of their difference.
    public static func of(_ report: Report, variant: String, metrics: [String]) -> [String: GuardrailObservation] {
        func group(_ variant: String) -> ReportGroup? { report.groups.first { $0.key.variant == variant } }
        var observations: [String: GuardrailObservation] = [:]
        for key in metrics {
            let rolled = group(variant)?.metrics.first { $0.key == key }
            let control = group(report.control)?.metrics.first { $0.key == key }
            observations[key] = GuardrailObservation(
                value: rolled?.mean, controlValue: control?.mean,
                difference: rolled?.comparison?.method == .sequential ? rolled?.comparison?.confidenceInterval : nil)
        }
        return observations
    }
}

/// What the rollout controller does on one tick.
public enum RolloutDecision: Sendable, Hashable {
    /// Nothing to do yet (time not up, too few units, waiting for a human, or finished).
    case wait(String)
    /// Enter step `to` (an index into `steps`).
    case advance(to: Int)
    /// The next step needs an approval first.
    case awaitApproval(step: Int)
    /// The last step has served its time healthy.
    case complete
    /// A guardrail broke and `on_breach` is `rollback`.
    case rollback(reason: String)
    /// A guardrail broke and `on_breach` is `pause`.
    case pause(reason: String)
}

/// The rollout state machine: pure, so every transition is decided from its inputs only.
public enum RolloutMachine {
    /// Decides one tick.
    /// - Parameters:
    ///   - observations: guardrail metrics of the current step, by metric key; a missing
    ///     metric or value cannot break a guardrail (there is nothing to judge yet).
    ///   - rolledUnits: units counted in the rolled variant with at least one event during the
    ///     current step (returning units count).
    ///   - approved: whether the gate before the next step has been passed.
    public static func decide(
        plan: RolloutPlan, state: RolloutState, now: Date, observations: [String: GuardrailObservation],
        rolledUnits: Int, approved: Bool = false
    ) -> RolloutDecision {
        switch state.phase {
        case .completed: return .wait("completed")
        case .rolledBack: return .wait("rolled back")
        case .paused: return .wait("paused")
        case .running, .awaitingApproval: break
        }
        // The current step keeps serving while it waits for a human: guardrails still apply.
        if let breach = breach(plan, observations) {
            return plan.onBreach == .rollback ? .rollback(reason: breach) : .pause(reason: breach)
        }
        if state.phase == .awaitingApproval {
            guard approved else { return .wait("awaiting approval") }
            return state.step + 1 < plan.steps.count ? .advance(to: state.step + 1) : .complete
        }
        guard state.elapsed(at: now) >= Double(plan.stepSeconds) else { return .wait("step time not up") }
        guard rolledUnits >= plan.minUnits else {
            return .wait("\(rolledUnits) of \(plan.minUnits) units in \(plan.variant)")
        }
        let next = state.step + 1
        guard next < plan.steps.count else { return .complete }
        if plan.approvalBefore.contains(plan.steps[next]), !approved { return .awaitApproval(step: next) }
        return .advance(to: next)
    }

    /// Every guardrail with its value and whether it holds.
    public static func readings(_ plan: RolloutPlan, _ observations: [String: GuardrailObservation]) -> [GuardrailReading] {
        plan.guardrails.map { guardrail in
            let value = observations[guardrail.metric]?.value
            return GuardrailReading(
                metric: guardrail.metric, value: value?.isFinite == true ? value : nil,
                ok: violation(guardrail, observations[guardrail.metric]) == nil)
        }
    }

    /// The first broken guardrail, described; nil when all hold.
    public static func breach(_ plan: RolloutPlan, _ observations: [String: GuardrailObservation]) -> String? {
        plan.guardrails.lazy.compactMap { violation($0, observations[$0.metric]) }.first
    }

    /// How `guardrail` is broken by `observation`, or nil when it holds or there is nothing to
    /// judge (no value yet, or a relative bound without a control value).
    static func violation(_ guardrail: RolloutPlan.Guardrail, _ observation: GuardrailObservation?) -> String? {
        guard let observation, let value = observation.value, value.isFinite else { return nil }
        let m = guardrail.metric
        switch guardrail.bound {
        case .max(let limit):
            return value > limit ? "\(m) is \(format(value)), above its max \(format(limit))" : nil
        case .min(let limit):
            return value < limit ? "\(m) is \(format(value)), below its min \(format(limit))" : nil
        case .maxIncrease(let share):
            return relativeViolation(guardrail, observation, value: value, share: share, above: true)
        case .maxDrop(let share):
            return relativeViolation(guardrail, observation, value: value, share: share, above: false)
        }
    }

    /// A relative bound: more than `share` of the control's value above it (`above`) or below
    /// it — judged on the step's value (`threshold`) or on the always-valid interval of the
    /// difference lying wholly beyond the bound (`sequential`).
    private static func relativeViolation(
        _ guardrail: RolloutPlan.Guardrail, _ observation: GuardrailObservation, value: Double, share: Double, above: Bool
    ) -> String? {
        guard let control = observation.controlValue, control.isFinite else { return nil }
        let limit = abs(control) * share
        let breach = "\(guardrail.metric) is \(format(value)), more than \(format(share * 100)) % \(above ? "above" : "below") control (\(format(control)))"
        switch guardrail.test {
        case .threshold:
            guard above ? value > control + limit : value < control - limit else { return nil }
            return breach
        case .sequential:
            guard let interval = observation.difference, above ? interval.lowerBound > limit : interval.upperBound < -limit else { return nil }
            return breach + " with 95 % confidence: the always-valid interval of the difference is \(format(interval))"
        }
    }

    static func format(_ interval: ClosedRange<Double>) -> String {
        "[\(format(interval.lowerBound)), \(format(interval.upperBound))]"
    }

    static func format(_ value: Double) -> String {
        let rounded = (value * 1_000_000).rounded() / 1_000_000
        return rounded == rounded.rounded() && abs(rounded) < 1e15 ? String(Int64(rounded)) : String(rounded)
    }
}

extension RolloutState {
    /// `rollout_state` as the API shows it (docs/api.md, "Rollouts").
    public func json(plan: RolloutPlan) -> JSON {
        let percent: Double = phase == .rolledBack ? 0 : (plan.steps.indices.contains(step) ? plan.steps[step] : 0)
        return [
            "state": .string(phase.rawValue),
            "step": .number(Double(step)),
            "percent": .number(percent),
            "step_started_at": .string(Timestamp.format(stepStartedAt)),
            "reason": reason.map(JSON.string) ?? .null,
            "approved": .bool(approved),
            "guardrails": .array(guardrails.map(\.json)),
        ]
    }

    /// What is stored: the API fields and the paused clock.
    public func storageJSON(plan: RolloutPlan) -> JSON {
        guard case .object(var o) = json(plan: plan) else { return .null }
        o["elapsed_before_pause"] = .number(elapsedBeforePause)
        return .object(o)
    }

    public init?(storage: JSON) {
        guard let o = storage.objectValue, let phase = o["state"]?.stringValue.flatMap(Phase.init(rawValue:)),
              let step = o["step"]?.numberValue, let started = o["step_started_at"]?.stringValue.flatMap(Timestamp.parse)
        else { return nil }
        let readings = (o["guardrails"]?.arrayValue ?? []).compactMap(GuardrailReading.init(json:))
        self.init(
            phase: phase, step: Int(step), stepStartedAt: started, elapsedBeforePause: o["elapsed_before_pause"]?.numberValue ?? 0,
            reason: o["reason"]?.stringValue, approved: o["approved"]?.boolValue ?? false, guardrails: readings)
    }
}
