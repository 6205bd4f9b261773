/// Why a unit got its variant (SPEC 6).
public enum AssignmentReason: Sendable, Hashable {
    case rule(String)
    case traffic, optOut, layer, noUnit, noRuleMatched, notRunning, winner

    public var description: String {
        switch self {
        case .rule(let r): r
        case .traffic: "traffic"
        case .optOut: "opt_out"
        case .layer: "layer"
        case .noUnit: "no_unit"
        case .noRuleMatched: "default"
        case .notRunning: "not_running"
        case .winner: "winner"
        }
    }
}

/// One experiment's answer for one context.
public struct Assignment: Sendable {
    public let experiment: CompiledExperiment
    public let variantIndex: Int
    public let reason: AssignmentReason
    /// True when the unit takes part: it is then recorded as exposed.
    public let inExperiment: Bool
    /// The id that was hashed, when there was one.
    public let unit: String?
    /// The rule that decided, when one did.
    public let rule: CompiledExperiment.CompiledRule?

    public var variant: Variant { experiment.variants[variantIndex] }
    public var variantKey: String { experiment.variants[variantIndex].key }
}

/// The pure decision of SPEC 2 and 6: which variant a context gets, from an immutable snapshot.
/// No I/O, no locks: the same context and snapshot give the same answer on every replica.
public enum Assigner {
    public static func assign(_ context: AssignmentContext, to experiment: CompiledExperiment, optedOut: Set<String>) -> Assignment {
        func answer(
            _ index: Int, _ reason: AssignmentReason, _ inExperiment: Bool, _ unit: String?, _ rule: CompiledExperiment.CompiledRule? = nil
        ) -> Assignment {
            Assignment(experiment: experiment, variantIndex: index, reason: reason, inExperiment: inExperiment, unit: unit, rule: rule)
        }
        let unit = context.unit(experiment.unit) ?? experiment.fallbackUnit.flatMap { context.unit($0) }

        switch experiment.status {
        case .running: break
        case .stopped:
            if let winner = experiment.winner { return answer(winner, .winner, false, unit) }
            return answer(experiment.control, .notRunning, false, unit)
        case .paused, .rolledBack, .draft:
            return answer(experiment.control, .notRunning, false, unit)
        }
        guard let unit, !unit.isEmpty else { return answer(experiment.control, .noUnit, false, nil) }
        if experiment.optOut, !optedOut.isEmpty, optedOut.contains(unit) {
            return answer(experiment.control, .optOut, false, unit)
        }
        if let layerSalt = experiment.layerSalt, let range = experiment.layerRange {
            let b = Bucketing.bucket(salt: layerSalt, unit: unit)
            guard b >= range.start, b < range.end else { return answer(experiment.control, .layer, false, unit) }
        }
        for rule in experiment.rules {
            if let when = rule.when, !when.evaluate(context) { continue }
            if rule.traffic < Bucketing.buckets, Bucketing.bucket(salt: experiment.trafficSalt, unit: unit) >= rule.traffic {
                return answer(experiment.control, .traffic, false, unit)
            }
            if rule.ranges.count == 1 { return answer(rule.ranges[0].variant, .rule(rule.reason), true, unit, rule) }
            let b = Bucketing.bucket(salt: experiment.salt, unit: unit)
            for range in rule.ranges where b < range.upper {
                return answer(range.variant, .rule(rule.reason), true, unit, rule)
            }
            // Weights sum to 100 %, so this is unreachable; answer the control rather than fail.
            return answer(experiment.control, .rule(rule.reason), true, unit, rule)
        }
        return answer(experiment.control, .noRuleMatched, false, unit)
    }

    /// Every active experiment of the snapshot, in key order.
    public static func assignAll(_ context: AssignmentContext, snapshot: ConfigSnapshot) -> [Assignment] {
        snapshot.experiments.map { assign(context, to: $0, optedOut: snapshot.optedOut) }
    }
}
