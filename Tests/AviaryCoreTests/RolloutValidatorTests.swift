import AviaryCore
import Testing

@Suite struct RolloutValidatorTests {
    static let metricsContext = ExperimentValidationContext(knownCohorts: ["internal"], knownMetrics: ["error_rate", "latency_p99", "answer_rating"])

    static func withRollout(_ rollout: JSON) -> [String: JSON] {
        var body = sampleExperiment()
        body["rollout"] = rollout
        return body
    }

    static let specRollout: JSON = [
        "variant": "canary", "steps": [5, 25, 50, 100], "step_seconds": 900, "approval_before": [100], "min_units": 200,
        "on_breach": "rollback",
        "guardrails": [["metric": "error_rate", "max": 0.005], ["metric": "latency_p99", "max": 3000], ["metric": "answer_rating", "max_drop": 0.05]],
        "notify_url": "http://hooks.internal/aviary",
    ]

    @Test func specRolloutIsValidAndRoundTrips() throws {
        let definition = try ExperimentValidator.validate(.object(Self.withRollout(Self.specRollout)), context: Self.metricsContext).get()
        let plan = try #require(definition.rollout)
        #expect(plan.variant == "canary" && plan.steps == [5, 25, 50, 100] && plan.stepSeconds == 900)
        #expect(plan.approvalBefore == [100] && plan.minUnits == 200 && plan.onBreach == .rollback)
        #expect(plan.guardrails == [
            .init(metric: "error_rate", bound: .max(0.005)), .init(metric: "latency_p99", bound: .max(3000)),
            .init(metric: "answer_rating", bound: .maxDrop(0.05)),
        ])
        #expect(plan.json == Self.specRollout)
        // Stored definitions read back the same.
        let again = try ExperimentValidator.validate(.object(definition.json), context: ExperimentValidationContext(knownCohorts: nil)).get()
        #expect(again.rollout == plan)
    }

    @Test func aSequentialGuardrailRoundTrips() throws {
        guard case .object(var rollout) = Self.specRollout else { return }
        rollout["guardrails"] = [["metric": "error_rate", "max_increase": 0.1, "test": "sequential"], ["metric": "answer_rating", "max_drop": 0.05, "test": "threshold"]]
        let plan = try #require(try ExperimentValidator.validate(.object(Self.withRollout(.object(rollout))), context: Self.metricsContext).get().rollout)
        #expect(plan.guardrails == [
            .init(metric: "error_rate", bound: .maxIncrease(0.1), test: .sequential), .init(metric: "answer_rating", bound: .maxDrop(0.05)),
        ])
        #expect(plan.json["guardrails"] == [["metric": "error_rate", "max_increase": 0.1, "test": "sequential"], ["metric": "answer_rating", "max_drop": 0.05]])
    }

    @Test func everyRuleHasItsPath() {
        func check(_ change: (inout [String: JSON]) -> Void, _ path: String, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
            guard case .object(var r) = Self.specRollout else { return }
            change(&r)
            expectIssue(issues(Self.withRollout(.object(r)), context: Self.metricsContext), path: path, containing: text, sourceLocation: sourceLocation)
        }
        check({ $0["variant"] = "stable" }, "rollout.variant", "is the control")
        check({ $0["variant"] = "nope" }, "rollout.variant", "not one of the variants")
        check({ $0["steps"] = [5, 5, 50] }, "rollout.steps[1]", "above the step before")
        check({ $0["steps"] = [50, 25] }, "rollout.steps[1]", "above the step before")
        check({ $0["steps"] = [0, 25] }, "rollout.steps[0]", "above 0")
        check({ $0["steps"] = [5, 101] }, "rollout.steps[1]", "between 0 and 100")
        check({ $0["steps"] = [] }, "rollout.steps", "1 to 20 steps")
        check({ $0["step_seconds"] = 0 }, "rollout.step_seconds", "from 1")
        check({ $0["step_seconds"] = 1.5 }, "rollout.step_seconds", "whole number")
        check({ $0["approval_before"] = [75] }, "rollout.approval_before[0]", "not one of the steps")
        check({ $0["min_units"] = -1 }, "rollout.min_units", "0 or more")
        check({ $0["on_breach"] = "explode" }, "rollout.on_breach", "must be one of")
        check({ $0["guardrails"] = [["metric": "ghost", "max": 1]] }, "rollout.guardrails[0].metric", "not a defined metric")
        check({ $0["guardrails"] = [["metric": "error_rate"]] }, "rollout.guardrails[0]", "exactly one of")
        check({ $0["guardrails"] = [["metric": "error_rate", "max": 1, "min": 0]] }, "rollout.guardrails[0]", "exactly one of")
        check({ $0["guardrails"] = [["metric": "error_rate", "max_drop": -0.1]] }, "rollout.guardrails[0].max_drop", "0 or more")
        check({ $0["guardrails"] = [["metric": "error_rate", "max_increase": 0.1, "test": "bayes"]] }, "rollout.guardrails[0].test", "must be one of threshold, sequential")
        check({ $0["notify_url"] = "file:///etc/passwd" }, "rollout.notify_url", "http:// or https://")
        check({ $0["notify_url"] = "http://user:pw@host/x" }, "rollout.notify_url", "http:// or https://")
        check({ $0["colour"] = "red" }, "rollout.colour", "not a known field")
    }

    @Test func needsACatchAllSplitWithRoom() {
        var body = Self.withRollout(Self.specRollout)
        body["rules"] = [["name": "staff", "when": ["cohort": "internal"], "serve": ["variant": "canary"]]]
        expectIssue(issues(body, context: Self.metricsContext), path: "rollout", containing: "catch-all")
        body["rules"] = [["name": "everyone", "serve": ["variant": "stable"]]]
        expectIssue(issues(body, context: Self.metricsContext), path: "rollout", containing: "serve a split")
        // A third variant holding half the split leaves the rollout 50 % at most.
        body["variants"] = [["key": "stable", "value": 1], ["key": "canary", "value": 2], ["key": "other", "value": 3]]
        body["rules"] = [["name": "everyone", "serve": ["split": [
            ["variant": "stable", "weight": 45], ["variant": "canary", "weight": 5], ["variant": "other", "weight": 50]]]]]
        expectIssue(issues(body, context: Self.metricsContext), path: "rollout.steps", containing: "share only 50 %")
    }

    @Test func stepsMoveOnlyTheRolledVariantAndTheControl() throws {
        var body = Self.withRollout(["variant": "canary", "steps": [5, 25, 50], "step_seconds": 60])
        body["variants"] = [["key": "stable", "value": 1], ["key": "canary", "value": 2], ["key": "other", "value": 3]]
        body["rules"] = [["name": "everyone", "serve": ["split": [["variant": "stable", "weight": 90], ["variant": "other", "weight": 10]]]]]
        let definition = try ExperimentValidator.validate(.object(body), context: Self.metricsContext).get()
        #expect(definition.rolloutPercent == 0)
        var previous = 0.0
        for step in [5.0, 25, 50] {
            let next = try #require(definition.withRolloutPercent(step))
            guard case .split(let split) = next.rules.last!.serve else { Issue.record("no split"); return }
            let weights = Dictionary(uniqueKeysWithValues: split.map { ($0.variant, $0.weight) })
            #expect(weights == ["stable": 9_000 - Int(step * 100), "canary": Int(step * 100), "other": 1_000])
            #expect(next.rolloutPercent == step && step > previous)
            previous = step
        }
        #expect(definition.withRolloutPercent(95) == nil)
        // Back to 0 (a rollback) returns the weight to the control.
        let rolledBack = try #require(definition.withRolloutPercent(50)?.withRolloutPercent(0))
        guard case .split(let split) = rolledBack.rules.last!.serve else { return }
        #expect(split.first { $0.variant == "stable" }?.weight == 9_000)
    }
}
