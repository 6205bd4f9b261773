import AviaryCore
import Foundation
import Testing

/// What a replica serves when stored objects cannot be read (docs/operations.md, "Unreadable
/// stored objects"): the last good version, else an experiment's control, never a guess.
@Suite struct StoredConfigurationTests {
    let everyone = split([("stable", 50), ("canary", 50)])
    let broken = UnreadableObject(kind: .experiment, key: "broken", problem: "rules[0].serve.split: weights sum to 120, not 100")
    let users = (0..<200).map { user("u\($0)") }

    func served(_ snapshot: ConfigSnapshot, _ key: String) -> [String]? {
        guard let compiled = snapshot.experiment(key) else { return nil }
        return users.map { Assigner.assign($0, to: compiled, in: snapshot).variantKey }
    }

    @Test func anUnreadableExperimentKeepsItsLastGoodVersion() {
        let good = experiment("good", rules: [everyone]), last = experiment("broken", rules: [everyone])
        let before = ConfigSnapshot(revision: "1", experiments: [good, last], cohorts: [], optedOut: [])
        let standIn = Experiment.controlOnly(key: "broken", document: .object(last.definition.json), status: .running, revision: 1, createdAt: Date(), updatedAt: Date())
        var paused = good
        paused.status = .paused
        let stored = StoredConfiguration(revision: "2", experiments: [paused], cohorts: [], optedOut: [], unreadable: [broken], standIns: [standIn!])
        let after = ConfigSnapshot(stored: stored, previous: before)
        #expect(served(after, "broken") == served(before, "broken"))
        #expect(Set(served(after, "broken")!) == ["stable", "canary"])
        #expect(after.experiment("good")?.status == .paused)
        #expect(after.unreadable == [broken])
    }

    @Test func aReplicaThatNeverReadItServesTheControlToEveryone() {
        let last = experiment("broken", rules: [everyone])
        let standIn = Experiment.controlOnly(key: "broken", document: .object(last.definition.json), status: .running, revision: 3, createdAt: Date(), updatedAt: Date())
        let stored = StoredConfiguration(revision: "2", experiments: [], cohorts: [], optedOut: [], unreadable: [broken], standIns: [standIn!])
        let snapshot = ConfigSnapshot(stored: stored, previous: .empty)
        #expect(served(snapshot, "broken") == Array(repeating: "stable", count: users.count))
        let assignment = Assigner.assign(users[0], to: snapshot.experiment("broken")!, in: snapshot)
        #expect(!assignment.inExperiment && assignment.variant.value == .string("stable"))
    }

    @Test(arguments: [
        JSON.object(["variants": [["key": "a", "value": 1]]]),
        ["control": "b", "variants": [["key": "a", "value": 1]]],
        ["control": 3, "variants": []],
        .null,
    ])
    func withoutATellableControlNothingIsGuessed(document: JSON) {
        #expect(Experiment.controlOnly(key: "broken", document: document, status: .running, revision: 1, createdAt: Date(), updatedAt: Date()) == nil)
        let stored = StoredConfiguration(revision: "2", experiments: [], cohorts: [], optedOut: [], unreadable: [broken])
        #expect(ConfigSnapshot(stored: stored, previous: .empty).experiment("broken") == nil)
    }

    @Test func anUnreadableCohortKeepsItsLastGoodVersion() {
        let staff = Cohort(key: "staff", condition: .attribute("email", .endsWith("@example.com")))
        let gated = experiment("gated", rules: [Rule(name: "staff", when: .cohort("staff"), serve: .variant("canary"))])
        let before = ConfigSnapshot(revision: "1", experiments: [gated], cohorts: [staff], optedOut: [])
        let unreadable = UnreadableObject(kind: .cohort, key: "staff", problem: "condition: unknown operator")
        let after = ConfigSnapshot(
            stored: StoredConfiguration(revision: "2", experiments: [gated], cohorts: [], optedOut: [], unreadable: [unreadable]), previous: before)
        let person = user("p", ["email": "a@example.com"])
        #expect(Assigner.assign(person, to: after.experiment("gated")!, in: after).variantKey == "canary")
        let fresh = ConfigSnapshot(
            stored: StoredConfiguration(revision: "2", experiments: [gated], cohorts: [], optedOut: [], unreadable: [unreadable]), previous: .empty)
        #expect(Assigner.assign(person, to: fresh.experiment("gated")!, in: fresh).variantKey == "stable")
    }

    @Test func onlyARepairWritesOverAnUnreadableExperiment() throws {
        let standIn = experiment("broken", rules: [])
        for command in [ExperimentCommand.replace(.object([:]), ifMatch: 1), .archive(ifMatch: nil)] {
            #expect(try Experiment.repairTarget(for: command, unreadable: broken, standIn: standIn) == standIn)
        }
        for command in [ExperimentCommand.patch(.object([:]), ifMatch: 1), .lifecycle(.pause, winner: nil, reason: nil, ifMatch: nil), .approveRollout] {
            #expect(throws: broken.refusal) { try Experiment.repairTarget(for: command, unreadable: broken, standIn: standIn) }
        }
    }
}
