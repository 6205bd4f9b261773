import AviaryCore
import Foundation
import Testing

/// Every change of an experiment, applied without a database: what each command does, and each
/// illegal one refused with the error the API answers.
struct ExperimentCommandTests {
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let context = CommandContext(validation: .init(knownCohorts: [], knownMetrics: []), now: t0)

    static func definition(steps: [Double]? = [5, 25, 50, 100], catchAll: [SplitEntry] = [.init(variant: "stable", weight: 10_000)]) -> ExperimentDefinition {
        ExperimentDefinition(
            key: "chat", variants: [Variant(key: "stable", value: 1), Variant(key: "canary", value: 2)], control: "stable",
            rules: [Rule(name: "everyone", serve: .split(catchAll))],
            rollout: steps.map { RolloutPlan(variant: "canary", steps: $0, stepSeconds: 60) })
    }

    static func plain(status: ExperimentStatus = .draft, revision: Int = 3) -> Experiment {
        Experiment(
            definition: definition(steps: nil, catchAll: [.init(variant: "stable", weight: 5_000), .init(variant: "canary", weight: 5_000)]),
            status: status, revision: revision, createdAt: t0, updatedAt: t0)
    }

    static func apply(_ command: ExperimentCommand, to current: Experiment?, at offset: Double = 0) throws -> ExperimentChange? {
        var context = Self.context
        context.now = t0.addingTimeInterval(offset)
        return try Experiment.apply(command, key: "chat", to: current, context: context)
    }

    /// The change, which must exist.
    static func change(_ command: ExperimentCommand, to current: Experiment?, at offset: Double = 0) throws -> ExperimentChange {
        try #require(try apply(command, to: current, at: offset))
    }

    static func canaryWeight(_ e: Experiment) -> Int? {
        guard case .split(let split) = e.definition.rules.last!.serve else { return nil }
        return split.first { $0.variant == "canary" }?.weight
    }

    static func body(_ d: ExperimentDefinition) -> JSON { .object(d.json) }

    // MARK: create, replace, archive

    @Test func createMakesADraftAtRevisionOne() throws {
        let c = try Self.change(.create(Self.body(Self.plain().definition)), to: nil)
        #expect(c.action == "create" && c.before == nil && c.rolloutEvent == nil)
        #expect(c.experiment.status == .draft && c.experiment.revision == 1 && c.experiment.createdAt == Self.t0)
    }

    @Test func createRefusesTakenKeysAndInvalidBodies() {
        let body = Self.body(Self.plain().definition)
        #expect(throws: AviaryError.conflict("experiment \"chat\" already exists")) { try Self.apply(.create(body), to: Self.plain()) }
        var archived = Self.plain()
        archived.archivedAt = Self.t0
        #expect(throws: AviaryError.conflict("experiment \"chat\" exists (archived); keys are never reused")) {
            try Self.apply(.create(body), to: archived)
        }
        #expect {
            try Self.apply(.create(["key": "chat", "variants": []]), to: nil)
        } throws: { error in
            guard case AviaryError.invalid(let code, let issues) = error else { return false }
            return code == "invalid_experiment" && !issues.isEmpty
        }
    }

    @Test func replaceNeedsIfMatchALiveExperimentAndTheCurrentRevision() throws {
        let body = Self.body(Self.plain().definition)
        #expect(throws: AviaryError.self) { try Self.apply(.replace(body, ifMatch: nil), to: Self.plain()) }
        #expect {
            try Self.apply(.replace(body, ifMatch: nil), to: Self.plain())
        } throws: { error in
            if case AviaryError.preconditionRequired = error { return true } else { return false }
        }
        #expect(throws: AviaryError.notFound("experiment \"chat\" does not exist")) { try Self.apply(.replace(body, ifMatch: 1), to: nil) }
        #expect(throws: AviaryError.preconditionFailed(current: 3)) { try Self.apply(.replace(body, ifMatch: 2), to: Self.plain()) }
        var archived = Self.plain()
        archived.archivedAt = Self.t0
        #expect(throws: AviaryError.conflict("experiment \"chat\" is archived")) { try Self.apply(.replace(body, ifMatch: 3), to: archived) }
        var other = Self.plain().definition
        other.key = "other"
        #expect(throws: AviaryError.self) { try Self.apply(.replace(Self.body(other), ifMatch: 3), to: Self.plain()) }

        let c = try Self.change(.replace(body, ifMatch: 3), to: Self.plain(), at: 10)
        #expect(c.action == "update" && c.experiment.revision == 4 && c.experiment.updatedAt == Self.t0.addingTimeInterval(10))
        #expect(c.before == Self.plain())
    }

    @Test func aStoppedExperimentsWinnerMustStayAVariant() throws {
        var stopped = Self.plain(status: .stopped)
        stopped.winner = "canary"
        var without = stopped.definition
        without.variants.removeAll { $0.key == "canary" }
        without.rules = [Rule(name: "everyone", serve: .variant("stable"))]
        #expect {
            try Self.apply(.replace(Self.body(without), ifMatch: 3), to: stopped)
        } throws: { error in
            guard case AviaryError.invalid(_, let issues) = error else { return false }
            return issues.map(\.path) == ["variants"]
        }
    }

    @Test func archiveSetsTheTimeOnceAndOnlyOnce() throws {
        let c = try Self.change(.archive(ifMatch: nil), to: Self.plain(status: .running), at: 5)
        #expect(c.action == "archive" && c.experiment.archivedAt == Self.t0.addingTimeInterval(5) && c.experiment.revision == 4)
        #expect(throws: AviaryError.conflict("experiment \"chat\" is archived")) { try Self.apply(.archive(ifMatch: nil), to: c.experiment) }
        #expect(throws: AviaryError.preconditionFailed(current: 3)) { try Self.apply(.archive(ifMatch: 9), to: Self.plain()) }
    }

    // MARK: lifecycle

    static let legal: [LifecycleAction: [ExperimentStatus: ExperimentStatus]] = [
        .start: [.draft: .running], .pause: [.running: .paused], .resume: [.paused: .running],
        .stop: [.running: .stopped, .paused: .stopped], .rollback: [.running: .rolledBack],
    ]

    @Test(arguments: LifecycleAction.allCases, ExperimentStatus.allCases)
    func everyLifecycleActionFromEveryStatus(_ action: LifecycleAction, _ status: ExperimentStatus) throws {
        let current = Self.plain(status: status)
        if let target = Self.legal[action]?[status] {
            let c = try Self.change(.lifecycle(action, winner: nil, reason: nil, ifMatch: 3), to: current)
            #expect(c.experiment.status == target && c.action == action.rawValue && c.experiment.revision == 4)
        } else {
            #expect {
                try Self.apply(.lifecycle(action, winner: nil, reason: nil, ifMatch: nil), to: current)
            } throws: { error in
                guard case AviaryError.illegalTransition(let message) = error else { return false }
                return message.contains("it is \(status.rawValue)")
            }
        }
    }

    @Test func onlyStopTakesAWinnerAndItMustBeAVariant() throws {
        let running = Self.plain(status: .running)
        let stopped = try Self.change(.lifecycle(.stop, winner: "canary", reason: nil, ifMatch: nil), to: running).experiment
        #expect(stopped.status == .stopped && stopped.winner == "canary")
        for (action, winner) in [(LifecycleAction.pause, "canary"), (.stop, "nope")] {
            #expect {
                try Self.apply(.lifecycle(action, winner: winner, reason: nil, ifMatch: nil), to: running)
            } throws: { error in
                guard case AviaryError.invalid(let code, let issues) = error else { return false }
                return code == "invalid_request" && issues.map(\.path) == ["winner"]
            }
        }
        #expect(throws: AviaryError.notFound("experiment \"chat\" does not exist")) {
            try Self.apply(.lifecycle(.start, winner: nil, reason: nil, ifMatch: nil), to: nil)
        }
    }

    // MARK: rollouts

    static func started() throws -> Experiment {
        try change(.lifecycle(.start, winner: nil, reason: nil, ifMatch: nil), to: Experiment(definition: definition(), revision: 1)).experiment
    }

    @Test func startAdvanceRollbackMoveOnlyTheRolledWeight() throws {
        let start = try Self.change(.lifecycle(.start, winner: nil, reason: nil, ifMatch: nil), to: Experiment(definition: Self.definition()))
        #expect(start.rolloutEvent == RolloutEvent(.started) && start.experiment.rolloutState?.phase == .running)
        var e = start.experiment
        #expect(Self.canaryWeight(e) == 500)
        let advanced = try Self.change(.decideRollout(.advance(to: 1), readings: [], decidedAt: e.revision), to: e, at: 60)
        #expect(advanced.action == "rollout.advanced" && advanced.rolloutEvent?.event == "advanced")
        e = advanced.experiment
        #expect(Self.canaryWeight(e) == 2_500 && e.rolloutState?.step == 1 && e.rolloutState?.stepStartedAt == Self.t0.addingTimeInterval(60))
        let back = try Self.change(.decideRollout(.rollback(reason: "errors"), readings: [], decidedAt: e.revision), to: e)
        #expect(back.rolloutEvent == RolloutEvent(.rolledBack, reason: "errors"))
        e = back.experiment
        #expect(Self.canaryWeight(e) == 0 && e.status == .rolledBack && e.rolloutState?.phase == .rolledBack)
    }

    @Test func aDecisionOnAChangedRevisionOrAStoppedRolloutIsNotApplied() throws {
        let e = try Self.started()
        #expect(try Self.apply(.decideRollout(.advance(to: 1), readings: [], decidedAt: e.revision - 1), to: e) == nil)
        var paused = e
        paused.status = .paused
        #expect(try Self.apply(.decideRollout(.advance(to: 1), readings: [], decidedAt: e.revision), to: paused) == nil)
        #expect(try Self.apply(.decideRollout(.complete, readings: [], decidedAt: 1), to: nil) == nil)
        // Waiting stores the readings only: no revision, no history.
        let readings = [GuardrailReading(metric: "error_rate", value: 0.01, ok: true)]
        let wait = try Self.change(.decideRollout(.wait("time"), readings: readings, decidedAt: e.revision), to: e)
        #expect(wait.action == nil && wait.rolloutEvent == nil && wait.experiment.revision == e.revision)
        #expect(wait.experiment.rolloutState?.guardrails == readings)
    }

    @Test func gatesCompletionAndABreachThatPauses() throws {
        let e = try Self.started()
        let gate = try Self.change(.decideRollout(.awaitApproval(step: 1), readings: [], decidedAt: e.revision), to: e)
        #expect(gate.experiment.rolloutState?.phase == .awaitingApproval && gate.action == "rollout.awaiting_approval")
        let approved = try Self.change(.approveRollout, to: gate.experiment, at: 30)
        #expect(approved.action == "rollout.approve" && approved.rolloutEvent?.reason == "step 1 entered on approval")
        #expect(approved.experiment.rolloutState?.step == 1 && Self.canaryWeight(approved.experiment) == 2_500)
        // Ahead of time: marked, the step stays.
        let early = try Self.change(.approveRollout, to: e)
        #expect(early.experiment.rolloutState?.approved == true && early.experiment.rolloutState?.step == 0)
        let done = try Self.change(.decideRollout(.complete, readings: [], decidedAt: e.revision), to: e)
        #expect(done.experiment.rolloutState?.phase == .completed)
        let paused = try Self.change(.decideRollout(.pause(reason: "latency"), readings: [], decidedAt: e.revision), to: e, at: 40)
        #expect(paused.experiment.status == .paused && paused.experiment.rolloutState?.elapsedBeforePause == 40)
        #expect(paused.experiment.rolloutState?.reason == "latency")
    }

    @Test func approvalNeedsARunningRollout() throws {
        #expect(throws: AviaryError.notFound("experiment \"chat\" does not exist")) { try Self.apply(.approveRollout, to: nil) }
        #expect(throws: AviaryError.illegalTransition("experiment \"chat\" has no running rollout to approve")) {
            try Self.apply(.approveRollout, to: Self.plain(status: .running))
        }
        var completed = try Self.started()
        completed.rolloutState?.phase = .completed
        #expect(throws: AviaryError.illegalTransition("experiment \"chat\" has no running rollout to approve")) {
            try Self.apply(.approveRollout, to: completed)
        }
    }

    @Test func pauseAndResumeKeepTheServedTime() throws {
        let e = try Self.started()
        let paused = try Self.change(.lifecycle(.pause, winner: nil, reason: nil, ifMatch: nil), to: e, at: 40).experiment
        #expect(paused.rolloutState?.phase == .paused && paused.rolloutState?.elapsedBeforePause == 40)
        let resumed = try Self.change(.lifecycle(.resume, winner: nil, reason: nil, ifMatch: nil), to: paused, at: 1_000).experiment
        #expect(resumed.rolloutState?.elapsed(at: Self.t0.addingTimeInterval(1_010)) == 50)
        let byHand = try Self.change(.lifecycle(.rollback, winner: nil, reason: nil, ifMatch: nil), to: resumed)
        #expect(byHand.rolloutEvent == RolloutEvent(.rolledBack, reason: "rolled back by hand") && Self.canaryWeight(byHand.experiment) == 0)
    }

    @Test func aReplacementKeepsTheRolloutsShare() throws {
        var e = try Self.started()
        e = try Self.change(.decideRollout(.advance(to: 2), readings: [], decidedAt: e.revision), to: e).experiment
        // The editor sends the document read before the rollout moved it (canary at 0).
        e = try Self.change(.replace(Self.body(Self.definition()), ifMatch: e.revision), to: e).experiment
        #expect(Self.canaryWeight(e) == 5_000)
        // Fewer steps: held at the new last one.
        e = try Self.change(.replace(Self.body(Self.definition(steps: [10, 20])), ifMatch: e.revision), to: e).experiment
        #expect(Self.canaryWeight(e) == 2_000 && e.rolloutState?.step == 1)
        // No rollout any more: the state goes, the weights are the document's.
        e = try Self.change(.replace(Self.body(Self.definition(steps: nil)), ifMatch: e.revision), to: e).experiment
        #expect(e.rolloutState == nil && Self.canaryWeight(e) == nil)
    }
}

/// Which changes post a rollout notice, and what it says (docs/api.md, "The notice").
struct RolloutNoticeTests {
    static func running(notifyURL: String?) throws -> Experiment {
        var d = ExperimentCommandTests.definition()
        d.rollout?.notifyURL = notifyURL
        let draft = Experiment(definition: d, status: .draft, revision: 1, createdAt: ExperimentCommandTests.t0, updatedAt: ExperimentCommandTests.t0)
        return try ExperimentCommandTests.change(.lifecycle(.start, winner: nil, reason: nil, ifMatch: nil), to: draft).experiment
    }

    @Test func aRollbackAndAPausePostTheirNotice() throws {
        let experiment = try Self.running(notifyURL: "https://hooks.example/aviary")
        for (action, event) in [(LifecycleAction.rollback, "rolled_back"), (.pause, "paused")] {
            let change = try ExperimentCommandTests.change(.lifecycle(action, winner: nil, reason: "error spike", ifMatch: nil), to: experiment, at: 5)
            let notice = try #require(RolloutNotice(change))
            #expect(notice.event == event && notice.url == "https://hooks.example/aviary" && notice.experiment == "chat")
            #expect(notice.body["reason"] == "error spike" && notice.body["event"] == .string(event) && notice.body["variant"] == "canary")
            #expect(notice.body["status"] == .string(change.experiment.status.rawValue))
            #expect(notice.body["at"] == .string(Timestamp.format(ExperimentCommandTests.t0.addingTimeInterval(5))))
            #expect(UUID(uuidString: notice.delivery) != nil)
        }
    }

    @Test func otherChangesAndRolloutsWithoutAURLPostNone() throws {
        let experiment = try Self.running(notifyURL: "https://hooks.example/aviary")
        let paused = try ExperimentCommandTests.change(.lifecycle(.pause, winner: nil, reason: nil, ifMatch: nil), to: experiment)
        #expect(RolloutNotice(try ExperimentCommandTests.change(.lifecycle(.resume, winner: nil, reason: nil, ifMatch: nil), to: paused.experiment)) == nil)
        #expect(RolloutNotice(try ExperimentCommandTests.change(.approveRollout, to: experiment)) == nil)
        let silent = try Self.running(notifyURL: nil)
        #expect(RolloutNotice(try ExperimentCommandTests.change(.lifecycle(.rollback, winner: nil, reason: nil, ifMatch: nil), to: silent)) == nil)
    }
}
