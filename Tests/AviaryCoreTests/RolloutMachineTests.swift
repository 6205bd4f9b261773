import AviaryCore
import Foundation
import Testing

@Suite struct RolloutMachineTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let plan = RolloutPlan(
        variant: "canary", steps: [5, 25, 50, 100], stepSeconds: 900, approvalBefore: [100], minUnits: 200,
        guardrails: [
            .init(metric: "error_rate", bound: .max(0.005)),
            .init(metric: "latency_p99", bound: .max(3000)),
            .init(metric: "answer_rating", bound: .maxDrop(0.05)),
            .init(metric: "conversion", bound: .min(0.1)),
            .init(metric: "cost", bound: .maxIncrease(0.2)),
        ])

    static func decide(
        _ state: RolloutState, at seconds: Double, _ observations: [String: GuardrailObservation] = [:], units: Int = 500,
        approved: Bool = false, plan: RolloutPlan = plan
    ) -> RolloutDecision {
        RolloutMachine.decide(
            plan: plan, state: state, now: t0.addingTimeInterval(seconds), observations: observations, rolledUnits: units,
            approved: approved)
    }

    @Test func waitsForTheStepTimeThenAdvances() {
        let state = RolloutState(step: 0, stepStartedAt: Self.t0)
        #expect(Self.decide(state, at: 0) == .wait("step time not up"))
        #expect(Self.decide(state, at: 899.9) == .wait("step time not up"))
        #expect(Self.decide(state, at: 900) == .advance(to: 1))
        #expect(Self.decide(RolloutState(step: 1, stepStartedAt: Self.t0), at: 901) == .advance(to: 2))
    }

    @Test func minUnitsHoldsTheStep() {
        let state = RolloutState(step: 0, stepStartedAt: Self.t0)
        #expect(Self.decide(state, at: 5000, units: 199) == .wait("199 of 200 units in canary"))
        #expect(Self.decide(state, at: 5000, units: 200) == .advance(to: 1))
    }

    @Test func approvalGateWaitsForAHuman() {
        // Step 2 (50 %) done: 100 % needs approval.
        let state = RolloutState(step: 2, stepStartedAt: Self.t0)
        #expect(Self.decide(state, at: 900) == .awaitApproval(step: 3))
        let waiting = RolloutState(phase: .awaitingApproval, step: 2, stepStartedAt: Self.t0)
        #expect(Self.decide(waiting, at: 10_000) == .wait("awaiting approval"))
        #expect(Self.decide(waiting, at: 10_000, approved: true) == .advance(to: 3))
        // An approval given before the gate is reached lets it pass directly.
        #expect(Self.decide(state, at: 900, approved: true) == .advance(to: 3))
    }

    @Test func lastStepCompletes() {
        let state = RolloutState(step: 3, stepStartedAt: Self.t0)
        #expect(Self.decide(state, at: 100) == .wait("step time not up"))
        #expect(Self.decide(state, at: 900) == .complete)
        #expect(Self.decide(RolloutState(phase: .completed, step: 3, stepStartedAt: Self.t0), at: 99_999) == .wait("completed"))
    }

    @Test func guardrailsBreakImmediatelyWhateverTheClock() {
        let state = RolloutState(step: 1, stepStartedAt: Self.t0)
        let breaches: [(String, GuardrailObservation, String)] = [
            ("error_rate", .init(value: 0.0051), "error_rate is 0.0051, above its max 0.005"),
            ("latency_p99", .init(value: 3001), "latency_p99 is 3001, above its max 3000"),
            ("answer_rating", .init(value: 3.7, controlValue: 4), "answer_rating is 3.7, more than 5 % below control (4)"),
            ("conversion", .init(value: 0.09), "conversion is 0.09, below its min 0.1"),
            ("cost", .init(value: 1.21, controlValue: 1), "cost is 1.21, more than 20 % above control (1)"),
        ]
        for (metric, observation, reason) in breaches {
            #expect(Self.decide(state, at: 1, [metric: observation]) == .rollback(reason: reason))
        }
        // On the limit is not a breach.
        let edge: [String: GuardrailObservation] = [
            "error_rate": .init(value: 0.005), "answer_rating": .init(value: 3.8, controlValue: 4),
            "conversion": .init(value: 0.1), "cost": .init(value: 1.2, controlValue: 1),
        ]
        #expect(Self.decide(state, at: 900, edge) == .advance(to: 2))
        // Nothing measured yet, or no control to compare with: nothing to judge.
        let unknown: [String: GuardrailObservation] = [
            "error_rate": .init(value: nil), "answer_rating": .init(value: 1, controlValue: nil),
        ]
        #expect(Self.decide(state, at: 900, unknown) == .advance(to: 2))
        // A gate does not shield a failing canary.
        let waiting = RolloutState(phase: .awaitingApproval, step: 2, stepStartedAt: Self.t0)
        #expect(Self.decide(waiting, at: 1, ["error_rate": .init(value: 1)]) == .rollback(reason: "error_rate is 1, above its max 0.005"))
    }

    @Test func aSequentialGuardrailBreaksOnlyWhenTheIntervalLiesBeyondItsBound() {
        var plan = Self.plan
        plan.guardrails = [
            .init(metric: "cost", bound: .maxIncrease(0.2), test: .sequential), .init(metric: "answer_rating", bound: .maxDrop(0.05), test: .sequential),
        ]
        let state = RolloutState(step: 1, stepStartedAt: Self.t0)
        // Far above the threshold, but the interval still reaches below +20 % of the control.
        let noisy = GuardrailObservation(value: 2, controlValue: 1, difference: 0.1...1.9)
        #expect(Self.decide(state, at: 900, ["cost": noisy], plan: plan) == .advance(to: 2))
        // No interval (too few units): nothing to judge.
        #expect(Self.decide(state, at: 900, ["cost": .init(value: 2, controlValue: 1)], plan: plan) == .advance(to: 2))
        let sure = GuardrailObservation(value: 1.5, controlValue: 1, difference: 0.21...0.79)
        #expect(Self.decide(state, at: 1, ["cost": sure], plan: plan) == .rollback(
            reason: "cost is 1.5, more than 20 % above control (1) with 95 % confidence: the always-valid interval of the difference is [0.21, 0.79]"))
        let worse = GuardrailObservation(value: 3.5, controlValue: 4, difference: -0.9 ... -0.21)
        #expect(Self.decide(state, at: 1, ["answer_rating": worse], plan: plan) == .rollback(
            reason: "answer_rating is 3.5, more than 5 % below control (4) with 95 % confidence: the always-valid interval of the difference is [-0.9, -0.21]"))
        let edge = GuardrailObservation(value: 3.5, controlValue: 4, difference: -0.9 ... -0.2)
        #expect(Self.decide(state, at: 900, ["answer_rating": edge], plan: plan) == .advance(to: 2))
    }

    @Test func onBreachPausePauses() {
        var plan = Self.plan
        plan.onBreach = .pause
        let decision = Self.decide(RolloutState(stepStartedAt: Self.t0), at: 1, ["error_rate": .init(value: 0.5)], plan: plan)
        #expect(decision == .pause(reason: "error_rate is 0.5, above its max 0.005"))
    }

    @Test func endedPausedAndRolledBackRolloutsDoNothing() {
        for phase in [RolloutState.Phase.paused, .rolledBack, .completed] {
            let state = RolloutState(phase: phase, step: 1, stepStartedAt: Self.t0)
            guard case .wait = Self.decide(state, at: 1e6, ["error_rate": .init(value: 1)], approved: true) else {
                Issue.record("\(phase) acted")
                continue
            }
        }
    }

    @Test func aClockThatJumpsNeverSkipsOrShortensSteps() {
        let state = RolloutState(step: 0, stepStartedAt: Self.t0)
        // Backwards: the step holds.
        #expect(Self.decide(state, at: -86_400) == .wait("step time not up"))
        #expect(state.elapsed(at: Self.t0.addingTimeInterval(-86_400)) == 0)
        // Forwards by days: one step per decision, never several.
        #expect(Self.decide(state, at: 86_400 * 30) == .advance(to: 1))
    }

    @Test func pausedClockResumesWhereItStopped() {
        // 600 s served, paused, resumed now: 300 s are left.
        let resumed = RolloutState(step: 0, stepStartedAt: Self.t0, elapsedBeforePause: 600)
        #expect(Self.decide(resumed, at: 299) == .wait("step time not up"))
        #expect(Self.decide(resumed, at: 300) == .advance(to: 1))
        let paused = RolloutState(phase: .paused, step: 0, stepStartedAt: Self.t0, elapsedBeforePause: 600)
        #expect(paused.elapsed(at: Self.t0.addingTimeInterval(10_000)) == 600)
    }

    @Test func exhaustiveWalkNeverMovesBackwards() {
        // Every step, phase, clock offset, unit count and approval: a decision only moves forward
        // by one step, and only from running or approved gates.
        let offsets: [Double] = [-1e6, -1, 0, 899, 900, 901, 1e7]
        for phase in RolloutState.Phase.allCases {
            for step in Self.plan.steps.indices {
                for offset in offsets {
                    for units in [0, 199, 200, 10_000] {
                        for approved in [false, true] {
                            let state = RolloutState(phase: phase, step: step, stepStartedAt: Self.t0)
                            let decision = Self.decide(state, at: offset, units: units, approved: approved)
                            switch decision {
                            case .advance(let to):
                                #expect(to == step + 1)
                                #expect(phase == .running || (phase == .awaitingApproval && approved))
                            case .awaitApproval(let next):
                                #expect(next == step + 1 && phase == .running)
                                #expect(Self.plan.approvalBefore.contains(Self.plan.steps[next]))
                            case .complete:
                                #expect(step == Self.plan.steps.count - 1 || phase == .awaitingApproval)
                            case .rollback, .pause:
                                Issue.record("no observations, yet \(decision)")
                            case .wait:
                                break
                            }
                        }
                    }
                }
            }
        }
    }
}
