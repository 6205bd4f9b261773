import Foundation

/// A/A rollouts (docs/statistics.md, "Guardrails that do not cry wolf"): the canary is the
/// control under another name, so every rollback is a false one. Each simulated rollout walks
/// its steps with units arriving every tick, split by the step's percent; at every tick the
/// step's numbers so far go through the same report (`ReportBuilder`, sequential as the
/// rollout leader asks) and the same guardrail judgement (`RolloutMachine.breach`) as a real
/// rollout, once with a threshold guardrail and once with a sequential one, on the same data.
/// `scripts/simulate-guardrails` runs it; a test holds its result.
public enum GuardrailSimulation {
    public struct Settings: Sendable {
        public var rollouts = 1_000
        public var steps: [Double] = [5, 25, 50, 100]
        /// Ticks of the rollout controller per step (one every step_seconds / ticksPerStep).
        public var ticksPerStep = 20
        /// Units arriving per tick, split between canary and control by the step's percent.
        public var unitsPerTick = 200
        /// Every unit's chance of an error, in both groups: the guardrail metric is the share
        /// of units with an error (a proportion).
        public var errorRate = 0.05
        /// The canary's error rate when it is not the control's (an A/B check that a real
        /// regression is still caught): every rollback is then a true one.
        public var canaryErrorRate: Double?
        /// The guardrail: error rate at most this share above the control's.
        public var maxIncrease = 0.2
        public var sequentialTuning = 5_000.0
        public var seed: UInt64 = 20_231_130

        public init() {}
    }

    public struct Outcome: Sendable, Equatable {
        public var rollouts: Int
        /// Rollouts a threshold guardrail would have rolled back.
        public var thresholdRollbacks: Int
        /// Rollouts a sequential guardrail would have rolled back.
        public var sequentialRollbacks: Int

        public var thresholdRate: Double { Double(thresholdRollbacks) / Double(max(rollouts, 1)) }
        public var sequentialRate: Double { Double(sequentialRollbacks) / Double(max(rollouts, 1)) }
    }

    public static func run(_ settings: Settings) -> Outcome {
        let experiment = ExperimentDefinition(
            key: "aa", variants: [Variant(key: "control", value: 0), Variant(key: "canary", value: 1)], control: "control",
            rules: [Rule(name: "everyone", serve: .split([.init(variant: "control", weight: 10_000), .init(variant: "canary", weight: 0)]))],
            metrics: ExperimentMetrics(guardrails: ["error_rate"]),
            analysis: AnalysisSettings(sequential: true, sequentialTuning: settings.sequentialTuning))
        let metric = Metric(key: "error_rate", kind: .proportion, event: "error")
        let query = ReportQuery(attribution: .servedAt)
        func plan(_ test: RolloutPlan.Guardrail.Test) -> RolloutPlan {
            RolloutPlan(
                variant: "canary", steps: settings.steps, stepSeconds: settings.ticksPerStep,
                guardrails: [RolloutPlan.Guardrail(metric: "error_rate", bound: .maxIncrease(settings.maxIncrease), test: test)])
        }
        let threshold = plan(.threshold), sequential = plan(.sequential)
        var random = SplitMix64(seed: settings.seed)
        var outcome = Outcome(rollouts: settings.rollouts, thresholdRollbacks: 0, sequentialRollbacks: 0)
        for _ in 0..<settings.rollouts {
            var thresholdBroke = false, sequentialBroke = false
            steps: for percent in settings.steps {
                // Units and units with an error per group, since the step began.
                var units = [0, 0], errors = [0, 0]
                for _ in 0..<settings.ticksPerStep {
                    for _ in 0..<settings.unitsPerTick {
                        let group = random.unit() * 100 < percent ? 1 : 0
                        units[group] += 1
                        if random.unit() < (group == 1 ? settings.canaryErrorRate ?? settings.errorRate : settings.errorRate) { errors[group] += 1 }
                    }
                    let aggregates = ["control", "canary"].enumerated().map { index, variant in
                        let n = units[index], p = n > 0 ? Double(errors[index]) / Double(n) : 0
                        return GroupAggregate(
                            key: ReportGroupKey(variant: variant), unitsWithEvents: n, events: errors[index],
                            metrics: ["error_rate": MetricMoments(n: n, mean: p, variance: n > 1 ? Double(n) * p * (1 - p) / Double(n - 1) : 0)])
                    }
                    let report = ReportBuilder.build(
                        experiment: experiment, metrics: ["error_rate": metric], query: query,
                        exposedUnits: ["control": units[0], "canary": units[1]], aggregates: aggregates)
                    let observations = GuardrailObservation.of(report, variant: "canary", metrics: ["error_rate"])
                    if !thresholdBroke, RolloutMachine.breach(threshold, observations) != nil { thresholdBroke = true }
                    if !sequentialBroke, RolloutMachine.breach(sequential, observations) != nil { sequentialBroke = true }
                    if thresholdBroke && sequentialBroke { break steps }
                }
            }
            if thresholdBroke { outcome.thresholdRollbacks += 1 }
            if sequentialBroke { outcome.sequentialRollbacks += 1 }
        }
        return outcome
    }
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a small seeded generator, so a simulation is the
/// same on every machine.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
}
