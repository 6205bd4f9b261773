import AviaryCore
import Foundation
import Testing

// Reference values from gbstats 0.8.0 (scripts/stats-fixtures.py): SequentialTwoSidedTTest and
// RegressionAdjustedStatistic with TwoSidedTTest, on absolute differences.

extension StatisticsFixtures {
    /// One group as a case gives it: Welch's inputs, a proportion's count, a ratio's moments.
    struct GroupMoments: Decodable, Sendable {
        var n: Int
        var mean, variance, sum: Double?
        var numeratorMean, denominatorMean, numeratorVariance, denominatorVariance, covariance: Double?
    }
    struct SequentialCase: Decodable, Sendable, CustomTestStringConvertible {
        var kind: String
        var tuning: Double
        var a, b: GroupMoments
        var delta, p: Double
        var ci: [Double]
        var testDescription: String { "\(kind) n=\(a.n)/\(b.n) tuning \(tuning)" }
    }
    struct PairMoments: Decodable, Sendable {
        var n: Int
        var postMean, preMean, postVariance, preVariance, covariance: Double
        var pairs: RatioSummary {
            RatioSummary(
                n: n, numeratorMean: postMean, denominatorMean: preMean, numeratorVariance: postVariance,
                denominatorVariance: preVariance, covariance: covariance)
        }
    }
    struct CupedCase: Decodable, Sendable, CustomTestStringConvertible {
        var name, kind: String
        var tuning: Double?
        var a, b: PairMoments
        var theta: Double
        var adjustedMeans, adjustedVariances: [Double]
        var delta, p: Double
        var ci: [Double]
        var testDescription: String { name + (tuning.map { ", sequential \($0)" } ?? "") }
    }
}

/// |actual − expected| ≤ 1e-9·|expected| + 1e-12: gbstats' p-values are 1 − cdf, exact to
/// about 1e-16 absolute only.
private func expectP(_ actual: Double?, _ expected: Double, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let actual else {
        Issue.record("\(what): nil, expected \(expected)", sourceLocation: sourceLocation)
        return
    }
    #expect(abs(actual - expected) <= 1e-9 * abs(expected) + 1e-12, "\(what): \(actual) vs \(expected)", sourceLocation: sourceLocation)
}

private func expectInterval(_ c: Comparison, _ delta: Double, _ ci: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(c.delta, delta, 1e-9, scale: max(abs(delta), ci[1] - ci[0]), "delta", sourceLocation: sourceLocation)
    let scale = abs(delta) + (ci[1] - ci[0])
    expectClose(c.confidenceInterval?.lowerBound, ci[0], 1e-9, scale: scale, "ci low", sourceLocation: sourceLocation)
    expectClose(c.confidenceInterval?.upperBound, ci[1], 1e-9, scale: scale, "ci high", sourceLocation: sourceLocation)
}

@Suite struct SequentialTestTests {
    @Test(arguments: StatisticsFixtures.shared.sequential)
    func isGbstatsSequentialTwoSidedTTest(_ c: StatisticsFixtures.SequentialCase) throws {
        let comparison: Comparison
        switch c.kind {
        case "mean":
            comparison = WelchTest.compare(
                control: SampleSummary(n: c.a.n, mean: c.a.mean!, variance: c.a.variance!),
                treatment: SampleSummary(n: c.b.n, mean: c.b.mean!, variance: c.b.variance!), sequentialTuning: c.tuning)
        case "ratio":
            func ratio(_ g: StatisticsFixtures.GroupMoments) -> RatioSummary {
                RatioSummary(
                    n: g.n, numeratorMean: g.numeratorMean!, denominatorMean: g.denominatorMean!, numeratorVariance: g.numeratorVariance!,
                    denominatorVariance: g.denominatorVariance!, covariance: g.covariance!)
            }
            comparison = DeltaMethod.compare(control: ratio(c.a), treatment: ratio(c.b), sequentialTuning: c.tuning)
        default:
            // A proportion goes through the report: its 0/1 units' sample moments, and the
            // builder's gbstats variance p(1 − p).
            comparison = try #require(Self.proportionReport(c).groups[1].metrics[0].comparison)
        }
        expectFinite(comparison)
        #expect(comparison.method == .sequential && comparison.degreesOfFreedom == nil)
        expectInterval(comparison, c.delta, c.ci)
        expectP(comparison.pValue, c.p, "p")
    }

    static func proportionReport(_ c: StatisticsFixtures.SequentialCase) -> Report {
        let definition = ExperimentDefinition(
            key: "p", variants: [Variant(key: "a", value: 1), Variant(key: "b", value: 2)], control: "a",
            rules: [Rule(name: "all", serve: .split([.init(variant: "a", weight: 5_000), .init(variant: "b", weight: 5_000)]))],
            metrics: ExperimentMetrics(primary: ["converted"]), analysis: AnalysisSettings(sequential: true, sequentialTuning: c.tuning))
        func aggregate(_ variant: String, _ g: StatisticsFixtures.GroupMoments) -> GroupAggregate {
            let n = Double(g.n), p = g.sum! / n
            return GroupAggregate(
                key: ReportGroupKey(variant: variant), unitsWithEvents: g.n, events: g.n,
                metrics: ["converted": MetricMoments(n: g.n, mean: p, variance: n * p * (1 - p) / (n - 1))])
        }
        return ReportBuilder.build(
            experiment: definition, metrics: ["converted": Metric(key: "converted", kind: .proportion, event: "converted")],
            query: ReportQuery(), exposedUnits: ["a": c.a.n, "b": c.b.n], aggregates: [aggregate("a", c.a), aggregate("b", c.b)])
    }

    @Test func theFixturesCoverTwoToAMillionUnitsAndSeveralTunings() {
        let cases = StatisticsFixtures.shared.sequential
        #expect(Set(cases.map(\.tuning)).count >= 4)
        #expect(cases.map(\.a.n).min() == 2 && cases.map(\.a.n).max() == 1_000_000)
        #expect(Set(cases.map(\.kind)) == ["mean", "proportion", "ratio"])
        #expect(cases.contains { $0.p < 1e-6 } && cases.contains { $0.p == 1 } && cases.contains { $0.p > 0.01 && $0.p < 1 })
    }

    @Test func aLargeStatisticGivesZeroNotNaN() {
        let c = WelchTest.compare(
            control: SampleSummary(n: 1_000_000, mean: 0, variance: 1), treatment: SampleSummary(n: 1_000_000, mean: 5, variance: 1),
            sequentialTuning: 5000)
        #expect(c.pValue == 0)
        expectFinite(c)
        let flat = WelchTest.compare(
            control: SampleSummary(n: 10, mean: 1, variance: 0), treatment: SampleSummary(n: 10, mean: 1, variance: 0), sequentialTuning: 5000)
        #expect(flat.pValue == nil && flat.note == "no variance" && flat.method == .sequential)
    }

    @Test func theIntervalIsWiderThanWelchsAndHoldsAtEveryLook() {
        let control = SampleSummary(n: 5_000, mean: 1, variance: 4), treatment = SampleSummary(n: 5_000, mean: 1.1, variance: 4)
        let fixed = WelchTest.compare(control: control, treatment: treatment)
        let always = WelchTest.compare(control: control, treatment: treatment, sequentialTuning: 5000)
        #expect(always.confidenceInterval!.lowerBound < fixed.confidenceInterval!.lowerBound)
        #expect(always.pValue! > fixed.pValue!)
        #expect(fixed.method == .welch && always.method == .sequential)
    }
}

@Suite struct RegressionAdjustmentTests {
    @Test(arguments: StatisticsFixtures.shared.cuped)
    func isGbstatsRegressionAdjustedStatistic(_ c: StatisticsFixtures.CupedCase) {
        let proportion = c.kind == "proportion"
        let theta = RegressionAdjustment.theta(control: c.a.pairs, treatment: c.b.pairs, proportion: proportion)
        #expect(abs(theta - c.theta) <= 1e-9 * abs(c.theta), "θ \(theta) vs \(c.theta)")
        if c.theta != 0 {
            for (pairs, mean, variance) in [(c.a.pairs, c.adjustedMeans[0], c.adjustedVariances[0]), (c.b.pairs, c.adjustedMeans[1], c.adjustedVariances[1])] {
                let adjusted = RegressionAdjustment.adjusted(pairs, theta: theta, proportion: proportion)
                expectClose(adjusted.mean, mean, 1e-9, scale: max(abs(mean), variance.squareRoot()), "adjusted mean")
                expectClose(adjusted.variance, variance, 1e-9, "adjusted variance")
            }
        }
        let comparison = RegressionAdjustment.compare(control: c.a.pairs, treatment: c.b.pairs, proportion: proportion, sequentialTuning: c.tuning)
        expectFinite(comparison)
        #expect(comparison.method == (c.tuning == nil ? .welch : .sequential))
        expectInterval(comparison, c.delta, c.ci)
        expectP(comparison.pValue, c.p, "p")
        if c.theta == 0 {
            #expect(comparison.cuped == nil && comparison.note?.contains("CUPED not applied") == true)
        } else {
            #expect(comparison.cuped?.theta == theta)
            #expect((comparison.cuped?.varianceReduction ?? -1) > 0 && (comparison.cuped?.varianceReduction ?? 2) < 1)
        }
    }

    @Test func theFixturesHoldAFallback() {
        #expect(StatisticsFixtures.shared.cuped.filter { $0.theta == 0 }.count >= 3)
        #expect(StatisticsFixtures.shared.cuped.contains { $0.a.n >= 100_000 })
    }
}
