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
    /// `test` appears only when it is `sequential`, as it was written.
    public var json: JSON {
        var o: [String: JSON] = ["metric": .string(metric)]
        switch bound {
        case .max(let x): o["max"] = .number(x)
        case .min(let x): o["min"] = .number(x)
        case .maxIncrease(let x): o["max_increase"] = .number(x)
        case .maxDrop(let x): o["max_drop"] = .number(x)
        }
        if test == .sequential { o["test"] = .string(test.rawValue) }
        return .object(o)
    }
}
