import Foundation

extension RolloutPlan {
    /// The `rollout` object as the API shows it (docs/api.md, "Rollouts"); `RolloutValidator` reads it back.
    public var json: JSON {
        [
            "variant": .string(variant),
            "steps": .array(steps.map(JSON.number)),
            "step_seconds": .number(Double(stepSeconds)),
            "approval_before": .array(approvalBefore.sorted().map(JSON.number)),
            "min_units": .number(Double(minUnits)),
            "on_breach": .string(onBreach.rawValue),
            "guardrails": .array(guardrails.map(\.json)),
            "notify_url": notifyURL.map(JSON.string) ?? .null,
        ]
    }
}

extension RolloutPlan.Guardrail {
    public var json: JSON {
        switch bound {
        case .max(let x): ["metric": .string(metric), "max": .number(x)]
        case .min(let x): ["metric": .string(metric), "min": .number(x)]
        case .maxIncrease(let x): ["metric": .string(metric), "max_increase": .number(x)]
        case .maxDrop(let x): ["metric": .string(metric), "max_drop": .number(x)]
        }
    }
}
