/// Why a unit got its variant (docs/api.md, "Assignment").
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
    /// The index of the rule that decided, when one did.
    public let ruleIndex: Int?

    public var rule: CompiledExperiment.CompiledRule? { ruleIndex.map { experiment.rules[$0] } }

    public var variant: Variant { experiment.variants[variantIndex] }
    public var variantKey: String { experiment.variants[variantIndex].key }
}

/// The pure decision of docs/api.md ("Assignment", "Bucketing"): which variant a context gets, from an immutable snapshot.
/// No I/O, no locks: the same context and snapshot give the same answer on every replica.
public enum Assigner {
    /// One experiment for one context.
    public static func assign(_ context: AssignmentContext, to experiment: CompiledExperiment, in snapshot: ConfigSnapshot) -> Assignment {
        var evaluation = snapshot.evaluationContext(context)
        return assign(&evaluation, to: experiment, in: snapshot)
    }

    /// Every active experiment of the snapshot, in key order, resolving the context once.
    public static func assignAll(_ context: AssignmentContext, snapshot: ConfigSnapshot) -> [Assignment] {
        var evaluation = snapshot.evaluationContext(context)
        var result: [Assignment] = []
        result.reserveCapacity(snapshot.experiments.count)
        for experiment in snapshot.experiments { result.append(assign(&evaluation, to: experiment, in: snapshot)) }
        return result
    }

    public static func assign(_ evaluation: inout EvaluationContext, to experiment: CompiledExperiment, in snapshot: ConfigSnapshot) -> Assignment {
        func answer(_ index: Int, _ reason: AssignmentReason, _ inExperiment: Bool, _ unit: String?, _ rule: Int? = nil) -> Assignment {
            Assignment(experiment: experiment, variantIndex: index, reason: reason, inExperiment: inExperiment, unit: unit, ruleIndex: rule)
        }
        let unit = experiment.attribution.unit { evaluation.unit($0) }

        switch experiment.status {
        case .running: break
        case .stopped:
            if let winner = experiment.winner { return answer(winner, .winner, false, unit) }
            return answer(experiment.control, .notRunning, false, unit)
        case .paused, .rolledBack, .draft:
            return answer(experiment.control, .notRunning, false, unit)
        }
        guard let unit, !unit.isEmpty else { return answer(experiment.control, .noUnit, false, nil) }
        if experiment.optOut, !snapshot.optedOut.isEmpty, snapshot.optedOut.contains(unit) {
            return answer(experiment.control, .optOut, false, unit)
        }
        if let layerPrefix = experiment.layerPrefix, let range = experiment.layerRange {
            let b = Bucketing.bucket(prefix: layerPrefix, unit: unit)
            guard b >= range.start, b < range.end else { return answer(experiment.control, .layer, false, unit) }
        }
        // Rules are read in place through a buffer, so walking them costs no reference counting.
        let decided: Assignment? = experiment.rules.withUnsafeBufferPointer { rules in
            for index in rules.indices {
                if let when = rules[index].when, !snapshot.program.evaluateRule(when, &evaluation) { continue }
                let traffic = rules[index].traffic
                if traffic < Bucketing.buckets, Bucketing.bucket(prefix: experiment.trafficPrefix, unit: unit) >= traffic {
                    return answer(experiment.control, .traffic, false, unit)
                }
                let ranges = rules[index].ranges
                if ranges.count == 1 { return answer(ranges[0].variant, .rule(rules[index].reason), true, unit, index) }
                let b = Bucketing.bucket(prefix: experiment.saltPrefix, unit: unit)
                for range in ranges where b < range.upper {
                    return answer(range.variant, .rule(rules[index].reason), true, unit, index)
                }
                // Weights sum to 100 %, so this is unreachable; answer the control rather than fail.
                return answer(experiment.control, .rule(rules[index].reason), true, unit, index)
            }
            return nil
        }
        if let decided { return decided }
        return answer(experiment.control, .noRuleMatched, false, unit)
    }
}
