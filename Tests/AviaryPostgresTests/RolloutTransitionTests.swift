import AviaryCore
import Foundation
import Testing

@testable import AviaryPostgres

/// The pure parts of rollout writes: what a lifecycle action, a decision or a replacement
/// definition does to an experiment.
@Suite struct RolloutTransitionTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func definition(steps: [Double] = [5, 25, 50, 100], catchAll: [SplitEntry] = [.init(variant: "stable", weight: 10_000)]) -> ExperimentDefinition {
        ExperimentDefinition(
            key: "chat", variants: [Variant(key: "stable", value: 1), Variant(key: "canary", value: 2)], control: "stable",
            rules: [Rule(name: "everyone", serve: .split(catchAll))],
            rollout: RolloutPlan(variant: "canary", steps: steps, stepSeconds: 60))
    }

    static func canaryWeight(_ e: Experiment) -> Int? {
        guard case .split(let split) = e.definition.rules.last!.serve else { return nil }
        return split.first { $0.variant == "canary" }?.weight
    }

    @Test func startAdvanceRollbackMoveOnlyTheRolledWeight() {
        var e = Experiment(definition: Self.definition(), status: .running)
        #expect(ExperimentRepository.applyLifecycle(.start, to: &e, reason: nil, now: Self.t0)?.event == "started")
        #expect(Self.canaryWeight(e) == 500 && e.rolloutState?.phase == .running)
        #expect(ExperimentRepository.apply(.advance(to: 1), to: &e, now: Self.t0.addingTimeInterval(60))?.event == "advanced")
        #expect(Self.canaryWeight(e) == 2_500 && e.rolloutState?.step == 1)
        #expect(e.rolloutState?.stepStartedAt == Self.t0.addingTimeInterval(60))
        #expect(ExperimentRepository.apply(.rollback(reason: "errors"), to: &e, now: Self.t0)?.reason == "errors")
        #expect(Self.canaryWeight(e) == 0 && e.status == .rolledBack && e.rolloutState?.phase == .rolledBack)
        #expect(ExperimentRepository.apply(.wait("nothing"), to: &e, now: Self.t0) == nil)
    }

    @Test func pauseAndResumeKeepTheServedTime() {
        var e = Experiment(definition: Self.definition(), status: .running)
        ExperimentRepository.applyLifecycle(.start, to: &e, reason: nil, now: Self.t0)
        ExperimentRepository.applyLifecycle(.pause, to: &e, reason: nil, now: Self.t0.addingTimeInterval(40))
        #expect(e.rolloutState?.phase == .paused && e.rolloutState?.elapsedBeforePause == 40)
        ExperimentRepository.applyLifecycle(.resume, to: &e, reason: nil, now: Self.t0.addingTimeInterval(1_000))
        #expect(e.rolloutState?.elapsed(at: Self.t0.addingTimeInterval(1_010)) == 50)
    }

    @Test func aReplacementKeepsTheRolloutsShare() {
        var e = Experiment(definition: Self.definition(), status: .running)
        ExperimentRepository.applyLifecycle(.start, to: &e, reason: nil, now: Self.t0)
        ExperimentRepository.apply(.advance(to: 2), to: &e, now: Self.t0)
        // The editor sends the document read before the rollout moved it (canary at 0).
        ExperimentRepository.replaceDefinition(of: &e, with: Self.definition())
        #expect(Self.canaryWeight(e) == 5_000)
        // Fewer steps: held at the new last one.
        ExperimentRepository.replaceDefinition(of: &e, with: Self.definition(steps: [10, 20]))
        #expect(Self.canaryWeight(e) == 2_000 && e.rolloutState?.step == 1)
        // No rollout any more: the state goes, the weights are the document's.
        var plain = Self.definition()
        plain.rollout = nil
        ExperimentRepository.replaceDefinition(of: &e, with: plain)
        #expect(e.rolloutState == nil && Self.canaryWeight(e) == nil)
    }
}
