import AviaryCore
import Foundation

// In-process benchmarks of the assignment hot path, run by scripts/bench on a release build.
// Not a test: it prints numbers for BENCHMARKS.md and never fails on them.

/// 50 running experiments of 3 rules each, like a busy chat product: a cohort rule, a
/// targeted split, and a catch-all split.
/// `distinctTargeting`: every experiment targets its own regions and versions, so no two rule
/// conditions are alike (the worst case); otherwise experiments draw from five targetings, as
/// experiments of one product tend to.
func makeSnapshot(experiments: Int, conditions: Bool = true, distinctTargeting: Bool = false) -> ConfigSnapshot {
    let staff = Cohort(key: "internal", condition: .any([.attribute("email", .endsWith("@lobehub.com")), .attribute("cookie.internal", .eq("1"))]))
    var list: [Experiment] = []
    for i in 0..<experiments {
        let key = String(format: "exp-%02d", i)
        let definition = ExperimentDefinition(
            key: key,
            variants: [
                Variant(key: "control", value: ["model": "gpt-4", "temperature": 0.7]),
                Variant(key: "treatment", value: ["model": "qwen-max", "temperature": 0.5]),
            ],
            control: "control",
            rules: Array([
                Rule(name: "staff", when: .cohort("internal"), serve: .variant("treatment")),
                Rule(
                    name: "east",
                    when: .all([
                        .attribute("region", .in(["cn-east", .string("region-\(distinctTargeting ? i : i % 5)")])),
                        .attribute("app_version", .semver(.gte, SemanticVersion("1.\(distinctTargeting ? i : i % 5).0")!)),
                    ]),
                    serve: .split([SplitEntry(variant: "control", weight: 7500), SplitEntry(variant: "treatment", weight: 2500)])),
                Rule(
                    name: "everyone", serve: .split([SplitEntry(variant: "control", weight: 9500), SplitEntry(variant: "treatment", weight: 500)]),
                    traffic: 8000),
            ].suffix(conditions ? 3 : 1)))
        list.append(Experiment(definition: definition, status: .running))
    }
    return ConfigSnapshot(revision: "bench", experiments: list, cohorts: [staff], optedOut: [])
}

func measure(_ label: String, iterations: Int, _ body: () -> Int) {
    var sink = 0
    for _ in 0..<(iterations / 10) { sink &+= body() }  // warm up
    var best = Double.infinity
    for _ in 0..<5 {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<iterations { sink &+= body() }
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / Double(iterations)
        best = min(best, elapsed)
    }
    print(String(format: "%@: %.2f µs per call (best of 5 runs of %d; checksum %d)", label, best / 1000, iterations, sink & 0xFF))
}

let snapshot = makeSnapshot(experiments: 50)
let context = AssignmentContext(
    userID: "u-4242", anonymousID: "8f14e45f-ceea-467f-a0e6-5f1b0f7c3b8e",
    attributes: [
        "region": "cn-east", "country": "CN", "app_version": "1.9.2", "email": "someone@example.com",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/121.0", "cookie.theme": "dark",
    ])
let users = (0..<1024).map { i -> AssignmentContext in
    var c = context
    c.userID = "u-\(i)"
    return c
}

measure("assign 50 experiments × 3 rules, one context", iterations: 200_000) {
    Assigner.assignAll(context, snapshot: snapshot).count
}
let distinct = makeSnapshot(experiments: 50, distinctTargeting: true)
measure("assign 50 experiments × 3 rules, no two targetings alike, one context", iterations: 200_000) {
    Assigner.assignAll(context, snapshot: distinct).count
}
let plain = makeSnapshot(experiments: 50, conditions: false)
measure("assign 50 experiments × 1 catch-all rule, one context", iterations: 200_000) {
    Assigner.assignAll(context, snapshot: plain).count
}
var n = 0
measure("assign 50 experiments × 3 rules, 1,024 rotating users", iterations: 200_000) {
    n = (n + 1) & 1023
    return Assigner.assignAll(users[n], snapshot: snapshot).reduce(0) { $0 &+ $1.variantIndex }
}
measure("bucket (murmur3 of salt:unit)", iterations: 5_000_000) {
    Bucketing.bucket(salt: "chat-release", unit: "u-4242")
}

