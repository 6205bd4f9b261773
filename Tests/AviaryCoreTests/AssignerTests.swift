import AviaryCore
import Foundation
import Testing

func experiment(
    _ key: String = "chat-release", status: ExperimentStatus = .running, rules: [Rule], variants: [String] = ["stable", "canary"],
    winner: String? = nil, optOut: Bool = true, layer: String? = nil, layerRange: LayerRange? = nil, unit: UnitKind = .userID,
    fallback: UnitKind? = nil
) -> Experiment {
    Experiment(
        definition: ExperimentDefinition(
            key: key, unit: unit, fallbackUnit: fallback, variants: variants.map { Variant(key: $0, value: .string($0)) }, control: variants[0],
            rules: rules, optOut: optOut, layer: layer, layerRange: layerRange),
        status: status, winner: winner)
}

func split(_ weights: [(String, Double)], traffic: Double = 100, when: Condition? = nil, name: String = "everyone") -> Rule {
    Rule(
        name: name, when: when, serve: .split(weights.map { SplitEntry(variant: $0.0, weight: Int(($0.1 * 100).rounded())) }),
        traffic: Int((traffic * 100).rounded()))
}

func assign(_ e: Experiment, _ context: AssignmentContext, cohorts: [Cohort] = [], optedOut: Set<String> = []) -> Assignment {
    let snapshot = ConfigSnapshot(revision: "t", experiments: [e], cohorts: cohorts, optedOut: optedOut)
    return Assigner.assign(context, to: snapshot.experiments[0], in: snapshot)
}

func user(_ id: String, _ attributes: [String: Scalar] = [:]) -> AssignmentContext {
    AssignmentContext(userID: id, attributes: attributes)
}

@Suite struct AssignerTests {
    let staff = Cohort(key: "internal", condition: .attribute("cookie.internal", .eq(.string("1"))))

    var chatRelease: Experiment {
        experiment(rules: [
            Rule(name: "staff", when: .cohort("internal"), serve: .variant("canary")),
            split([("stable", 75), ("canary", 25)], when: .attribute("region", .in([.string("cn-east")])), name: "east"),
            split([("stable", 95), ("canary", 5)]),
        ])
    }

    @Test func staffAlwaysGetTheCanary() {
        for i in 0..<500 {
            let a = assign(chatRelease, user("u-\(i)", ["cookie.internal": .string("1")]), cohorts: [staff])
            #expect(a.variantKey == "canary")
            #expect(a.reason.description == "rule:staff")
            #expect(a.inExperiment)
        }
    }

    @Test func regionRuleSplitsItsUnits() {
        let n = 10_000
        let canaries = (0..<n).filter { assign(chatRelease, user("u-\($0)", ["region": .string("cn-east")]), cohorts: [staff]).variantKey == "canary" }
        #expect(abs(Double(canaries.count) / Double(n) - 0.25) < 0.02)
        #expect(assign(chatRelease, user("u-1", ["region": .string("cn-east")]), cohorts: [staff]).reason.description == "rule:east")
    }

    @Test func splitMatchesTheBucketRanges() {
        for i in 0..<2000 {
            let b = Bucketing.bucket(salt: "chat-release", unit: "u-\(i)")
            #expect(assign(chatRelease, user("u-\(i)"), cohorts: [staff]).variantKey == (b < 9500 ? "stable" : "canary"))
        }
    }

    @Test func deterministicForTheSameUnit() {
        let snapshotA = ConfigSnapshot(revision: "a", experiments: [chatRelease], cohorts: [staff], optedOut: [])
        let snapshotB = ConfigSnapshot(revision: "b", experiments: [chatRelease], cohorts: [staff], optedOut: [])
        for i in 0..<1000 {
            let c = user("u-\(i)")
            #expect(Assigner.assignAll(c, snapshot: snapshotA)[0].variantKey == Assigner.assignAll(c, snapshot: snapshotB)[0].variantKey)
        }
    }

    @Test func rampingTheSplitNeverMovesACanaryBack() {
        var previous: Set<Int> = []
        for step in [5.0, 25, 50, 100] {
            let e = experiment(rules: [split([("stable", 100 - step), ("canary", step)])])
            let canaries = Set((0..<20_000).filter { assign(e, user("u-\($0)")).variantKey == "canary" })
            #expect(previous.isSubset(of: canaries), "a canary unit returned to control at \(step) %")
            #expect(abs(Double(canaries.count) / 20_000 - step / 100) < 0.02)
            previous = canaries
        }
        #expect(previous.count == 20_000)
    }

    @Test func rampingTrafficNeverMovesAUnitBetweenVariants() {
        var seen: [Int: String] = [:]
        var previousIn: Set<Int> = []
        for traffic in [10.0, 30, 60, 100] {
            let e = experiment(rules: [split([("stable", 50), ("canary", 50)], traffic: traffic)])
            var nowIn: Set<Int> = []
            for i in 0..<10_000 {
                let a = assign(e, user("u-\(i)"))
                if a.inExperiment {
                    nowIn.insert(i)
                    if let earlier = seen[i] { #expect(earlier == a.variantKey, "unit \(i) moved at traffic \(traffic)") }
                    seen[i] = a.variantKey
                } else {
                    #expect(a.reason == .traffic)
                    #expect(a.variantKey == "stable")
                }
            }
            #expect(previousIn.isSubset(of: nowIn))
            previousIn = nowIn
        }
    }

    @Test func layerRangesAreDisjoint() {
        let a = experiment("a", rules: [Rule(name: "all", serve: .variant("canary"))], layer: "home", layerRange: LayerRange(start: 0, end: 3000))
        let b = experiment("b", rules: [Rule(name: "all", serve: .variant("canary"))], layer: "home", layerRange: LayerRange(start: 3000, end: 10_000))
        var inA = 0
        for i in 0..<10_000 {
            let x = assign(a, user("u-\(i)"))
            let y = assign(b, user("u-\(i)"))
            #expect(x.inExperiment != y.inExperiment, "unit \(i) must be in exactly one experiment of the layer")
            if x.inExperiment { inA += 1 } else { #expect(x.reason == .layer) }
        }
        #expect(abs(Double(inA) / 10_000 - 0.3) < 0.02)
    }

    @Test func statusesOtherThanRunningServeControlOrWinner() {
        let rules = [Rule(name: "all", serve: .variant("canary"))]
        for status in [ExperimentStatus.paused, .rolledBack] {
            let a = assign(experiment(status: status, rules: rules), user("u"))
            #expect(a.variantKey == "stable")
            #expect(a.reason == .notRunning)
            #expect(!a.inExperiment)
        }
        let stopped = assign(experiment(status: .stopped, rules: rules), user("u"))
        #expect(stopped.variantKey == "stable" && stopped.reason == .notRunning)
        let won = assign(experiment(status: .stopped, rules: rules, winner: "canary"), user("u"))
        #expect(won.variantKey == "canary" && won.reason == .winner && !won.inExperiment)
    }

    @Test func draftAndArchivedAreNotInTheSnapshot() {
        var archived = experiment("b", rules: [])
        archived.archivedAt = Date()
        let snapshot = ConfigSnapshot(revision: "x", experiments: [experiment("a", status: .draft, rules: []), archived], cohorts: [], optedOut: [])
        #expect(snapshot.experiments.isEmpty)
    }

    @Test func noUnitServesControl() {
        let a = assign(chatRelease, AssignmentContext(anonymousID: "anon"))
        #expect(a.variantKey == "stable" && a.reason == .noUnit && !a.inExperiment && a.unit == nil)
        let fallback = experiment(rules: [Rule(name: "all", serve: .variant("canary"))], fallback: .anonymousID)
        let b = assign(fallback, AssignmentContext(anonymousID: "anon"))
        #expect(b.variantKey == "canary" && b.unit == "anon")
    }

    @Test func optedOutUnitsGetControl() {
        let e = experiment(rules: [Rule(name: "all", serve: .variant("canary"))])
        let a = assign(e, user("u-1"), optedOut: ["u-1"])
        #expect(a.variantKey == "stable" && a.reason == .optOut && !a.inExperiment)
        let notAllowed = experiment(rules: [Rule(name: "all", serve: .variant("canary"))], optOut: false)
        #expect(assign(notAllowed, user("u-1"), optedOut: ["u-1"]).variantKey == "canary")
    }

    @Test func noMatchingRuleIsDefault() {
        let e = experiment(rules: [Rule(name: "eu", when: .attribute("country", .in([.string("DE")])), serve: .variant("canary"))])
        let a = assign(e, user("u-1", ["country": .string("US")]))
        #expect(a.variantKey == "stable" && a.reason == .noRuleMatched && a.reason.description == "default" && !a.inExperiment)
    }
}
