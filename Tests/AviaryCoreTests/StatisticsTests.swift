import AviaryCore
import Foundation
import Testing

// Reference values from scripts/stats-fixtures.py (SciPy/NumPy, cross-checked with mpmath;
// statsmodels for multiple-testing corrections).

struct StatisticsFixtures: Decodable, Sendable {
    struct NormalPoint: Decodable, Sendable { var x, cdf, sf: Double }
    struct QuantilePoint: Decodable, Sendable { var p, x: Double }
    struct TPoint: Decodable, Sendable { var df, x, cdf, sf: Double }
    struct TQuantilePoint: Decodable, Sendable { var df, p, x: Double }
    struct ChiPoint: Decodable, Sendable { var df, x, sf: Double }
    struct GoodnessCase: Decodable, Sendable {
        var observed, proportions: [Double]
        var statistic, pvalue: Double
        var df: Int
    }
    struct WelchCase: Decodable, Sendable, CustomTestStringConvertible {
        var name: String
        var control, treatment: [Double]
        var controlSums, treatmentSums: [Double]
        var sumsOk: Bool
        /// Relative tolerance for this case (1e-9 unless the data is ill-conditioned).
        var rtol: Double
        var delta, relativeLift, se, statistic, pvalue, df, chance: Double
        var ci: [Double]
        var testDescription: String { name }
    }
    struct RatioGroup: Decodable, Sendable {
        var num, den, sums: [Double]
        var ratio, variance: Double
    }
    struct RatioCase: Decodable, Sendable, CustomTestStringConvertible {
        var name: String
        var control, treatment: RatioGroup
        var delta, relativeLift, se, statistic, pvalue, chance: Double
        var ci: [Double]
        var testDescription: String { name }
    }
    struct SampleQuantileCase: Decodable, Sendable { var values, q, expected: [Double] }
    struct MultipleTestsCase: Decodable, Sendable { var p, holm, bh: [Double] }
    struct MDECase: Decodable, Sendable { var alpha, power, multiple, statsmodels: Double }

    var normal: [NormalPoint]
    var normalPpf: [QuantilePoint]
    var t: [TPoint]
    var tPpf: [TQuantilePoint]
    var chi2Sf: [ChiPoint]
    var chisquare: [GoodnessCase]
    var welch: [WelchCase]
    var ratio: [RatioCase]
    var quantile: [SampleQuantileCase]
    var multipletests: [MultipleTestsCase]
    var mde: [MDECase]
    var sequential: [SequentialCase]
    var cuped: [CupedCase]

    static let shared: StatisticsFixtures = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/statistics.json")
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            return try decoder.decode(StatisticsFixtures.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot load \(url.path): \(error)")
        }
    }()
}

private var fixtures: StatisticsFixtures { .shared }

/// Relative error of `actual` against `expected`, measured against `scale` when given (for
/// quantities that may legitimately be near 0, such as a CI end).
func relativeError(_ actual: Double, _ expected: Double, scale: Double? = nil) -> Double {
    if actual == expected { return 0 }
    return abs(actual - expected) / (scale ?? max(abs(expected), abs(actual)))
}

/// Expects a finite value within `tolerance` (relative) of `expected`.
func expectClose(
    _ actual: Double?, _ expected: Double, _ tolerance: Double, scale: Double? = nil, _ what: @autoclosure () -> String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let actual else {
        Issue.record("\(what()): nil, expected \(expected)", sourceLocation: sourceLocation)
        return
    }
    #expect(actual.isFinite, "\(what()) is \(actual)", sourceLocation: sourceLocation)
    let error = relativeError(actual, expected, scale: scale)
    #expect(error <= tolerance, "\(what()): \(actual) vs \(expected), rel err \(error)", sourceLocation: sourceLocation)
}

/// Every number a comparison carries must be finite.
func expectFinite(_ c: Comparison, sourceLocation: SourceLocation = #_sourceLocation) {
    let values = [c.delta, c.relativeLift, c.standardError, c.degreesOfFreedom, c.statistic, c.pValue,
                  c.confidenceInterval?.lowerBound, c.confidenceInterval?.upperBound, c.chanceToBeatControl]
    for case let v? in values {
        #expect(v.isFinite, "non-finite value in \(c)", sourceLocation: sourceLocation)
    }
}

/// Everything here runs under `swift test --filter StatisticsTests`.
@Suite enum StatisticsTests {}

extension StatisticsTests {
    @Suite struct NormalTests {
        @Test func cdfAndSurvival() {
            for p in fixtures.normal {
                expectClose(Normal.cdf(p.x), p.cdf, 1e-12, "Φ(\(p.x))")
                expectClose(Normal.sf(p.x), p.sf, 1e-12, "1 − Φ(\(p.x))")
            }
        }

        @Test func quantile() {
            for p in fixtures.normalPpf {
                expectClose(Normal.quantile(p.p), p.x, 1e-14, scale: max(abs(p.x), 1e-3), "Φ⁻¹(\(p.p))")
            }
            #expect(Normal.quantile(0) == -.infinity && Normal.quantile(1) == .infinity)
            #expect(Normal.quantile(-0.1).isNaN && Normal.quantile(.nan).isNaN)
            #expect(abs(Normal.quantile(0.975) - Comparison.zCritical95) <= 1e-15)
        }
    }
}

extension StatisticsTests {
    @Suite struct StudentTTests {
        @Test(arguments: [1, 2, 2.5, 5, 10, 30, 1000])
        func cdfAndSurvival(_ df: Double) {
            let points = fixtures.t.filter { $0.df == df }
            #expect(points.count >= 20)
            for p in points {
                expectClose(StudentT.cdf(p.x, degreesOfFreedom: df), p.cdf, 1e-12, "t\(df).cdf(\(p.x))")
                expectClose(StudentT.sf(p.x, degreesOfFreedom: df), p.sf, 1e-12, "t\(df).sf(\(p.x))")
                expectClose(
                    StudentT.twoSidedPValue(p.x, degreesOfFreedom: df), min(1, 2 * min(p.cdf, p.sf)), 1e-12,
                    "t\(df) two-sided p(\(p.x))")
            }
        }

        @Test(arguments: [1, 2, 2.5, 5, 10, 30, 1000])
        func quantile(_ df: Double) {
            for p in fixtures.tPpf where p.df == df {
                expectClose(
                    StudentT.quantile(p.p, degreesOfFreedom: df), p.x, 1e-12, scale: max(abs(p.x), 1e-3),
                    "t\(df).ppf(\(p.p))")
            }
        }

        /// Degrees of freedom the fixtures don't cover (fractional below 1, Welch-sized, huge):
        /// the quantile must invert the CDF and be antisymmetric.
        @Test(arguments: [0.3, 0.999, 1.5, 3.7, 123.4, 19_997.9, 1e6, 1e9])
        func quantileInvertsCDF(_ df: Double) {
            for p in [1e-300, 1e-50, 1e-8, 0.001, 0.025, 0.2, 0.5, 0.7, 0.975, 0.999999] {
                let t = StudentT.quantile(p, degreesOfFreedom: df)
                guard t.isFinite else {
                    // Only right when the true quantile lies beyond the largest double.
                    #expect(t == -.infinity && StudentT.cdf(-.greatestFiniteMagnitude, degreesOfFreedom: df) > p)
                    continue
                }
                expectClose(StudentT.cdf(t, degreesOfFreedom: df), p, 1e-12, "t\(df).cdf(ppf(\(p)))")
                if p < 0.5, 1 - p < 1 {
                    let complement = 1 - p
                    #expect(StudentT.quantile(complement, degreesOfFreedom: df) == -StudentT.quantile(1 - complement, degreesOfFreedom: df))
                }
            }
        }

        @Test func largeDegreesOfFreedomApproachTheNormal() {
            for z in [-8.0, -3, -1, 0.5, 2, 5] {
                expectClose(StudentT.cdf(z, degreesOfFreedom: 1e14), Normal.cdf(z), 1e-9, "t(1e14).cdf(\(z))")
                expectClose(StudentT.cdf(z, degreesOfFreedom: .infinity), Normal.cdf(z), 0, "t(∞).cdf(\(z))")
            }
            expectClose(StudentT.quantile(0.975, degreesOfFreedom: 1e14), Comparison.zCritical95, 1e-12, "t(1e14).ppf")
        }

        @Test func invalidInput() {
            #expect(StudentT.cdf(1, degreesOfFreedom: 0).isNaN)
            #expect(StudentT.sf(.nan, degreesOfFreedom: 3).isNaN)
            #expect(StudentT.quantile(1.5, degreesOfFreedom: 3).isNaN)
            #expect(StudentT.quantile(0, degreesOfFreedom: 3) == -.infinity)
            #expect(StudentT.sf(.infinity, degreesOfFreedom: 3) == 0)
            #expect(StudentT.cdf(0, degreesOfFreedom: 3) == 0.5)
        }
    }
}

extension StatisticsTests {
    @Suite struct ChiSquareTests {
        @Test func survival() {
            for p in fixtures.chi2Sf {
                expectClose(ChiSquare.sf(p.x, degreesOfFreedom: p.df), p.sf, 1e-12, "χ²\(p.df).sf(\(p.x))")
                expectClose(
                    ChiSquare.cdf(p.x, degreesOfFreedom: p.df), 1 - p.sf, 1e-12, scale: 1, "χ²\(p.df).cdf(\(p.x))")
            }
        }

        @Test func goodnessOfFit() {
            for c in fixtures.chisquare {
                let r = ChiSquare.goodnessOfFit(observed: c.observed, expectedProportions: c.proportions)
                #expect(r.note == nil)
                #expect(r.degreesOfFreedom == c.df)
                expectClose(r.statistic, c.statistic, 1e-12, scale: max(c.statistic, 1e-12), "χ² of \(c.observed)")
                expectClose(r.pValue, c.pvalue, 1e-12, "p of \(c.observed)")
            }
        }

        @Test func goodnessOfFitEdgeCases() {
            let zeroShare = ChiSquare.goodnessOfFit(observed: [10, 5], expectedProportions: [1, 0])
            #expect(zeroShare.statistic == nil && zeroShare.pValue == 0 && zeroShare.note != nil)
            for (observed, shares) in [([1.0, 2], [1.0]), ([5.0], [1.0]), ([0.0, 0], [1.0, 1]), ([1.0, 2], [0.0, 0]),
                                       ([-1.0, 2], [1.0, 1]), ([.nan, 2], [1.0, 1])] {
                let r = ChiSquare.goodnessOfFit(observed: observed, expectedProportions: shares)
                #expect(r.statistic == nil && r.pValue == nil && r.note != nil, "\(observed) vs \(shares)")
            }
        }
    }
}

extension StatisticsTests {
    @Suite struct WelchTests {
        private func check(_ r: Comparison, _ c: StatisticsFixtures.WelchCase, tolerance: Double) {
            expectFinite(r)
            #expect(r.note == nil)
            expectClose(r.delta, c.delta, tolerance, scale: max(abs(c.delta), c.se), "delta")
            expectClose(r.relativeLift, c.relativeLift, tolerance, scale: max(abs(c.relativeLift), 1e-12), "lift")
            expectClose(r.standardError, c.se, tolerance, "se")
            expectClose(r.degreesOfFreedom, c.df, tolerance, "df")
            expectClose(r.statistic, c.statistic, tolerance, scale: max(abs(c.statistic), 1e-9), "t")
            expectClose(r.pValue, c.pvalue, tolerance, "p")
            expectClose(r.chanceToBeatControl, c.chance, tolerance, "chance to beat control")
            let halfWidth = (c.ci[1] - c.ci[0]) / 2
            expectClose(r.confidenceInterval?.lowerBound, c.ci[0], tolerance, scale: abs(c.delta) + halfWidth, "ci low")
            expectClose(r.confidenceInterval?.upperBound, c.ci[1], tolerance, scale: abs(c.delta) + halfWidth, "ci high")
        }

        @Test(arguments: fixtures.welch)
        func matchesSciPy(_ c: StatisticsFixtures.WelchCase) {
            let r = WelchTest.compare(control: SampleSummary(values: c.control), treatment: SampleSummary(values: c.treatment))
            check(r, c, tolerance: c.rtol)
        }

        /// The SQL path: the same groups summarized from n, Σx, Σx² (skipping the cases whose
        /// variance is below what Σx² can resolve).
        @Test(arguments: fixtures.welch.filter(\.sumsOk))
        func fromSums(_ c: StatisticsFixtures.WelchCase) {
            func summary(_ s: [Double]) -> SampleSummary { SampleSummary(n: Int(s[0]), sum: s[1], sumOfSquares: s[2]) }
            check(WelchTest.compare(control: summary(c.controlSums), treatment: summary(c.treatmentSums)), c, tolerance: 1e-9)
        }

        @Test func summaries() {
            let s = SampleSummary(values: [1e9 + 1, 1e9 + 2, 1e9 + 3])
            #expect(s.n == 3 && s.mean == 1e9 + 2 && s.variance == 1 && s.standardDeviation == 1)
            #expect(SampleSummary(values: [Double]()) == SampleSummary(n: 0, mean: 0, variance: 0))
            #expect(SampleSummary(values: [4]).standardDeviation == nil)
            // Constant data from sums is exactly "no variance", not rounding noise.
            let constant = Array(repeating: 0.1, count: 1000)
            let sums = SampleSummary(n: 1000, sum: constant.reduce(0, +), sumOfSquares: constant.map { $0 * $0 }.reduce(0, +))
            #expect(sums.variance == 0)
        }

        @Test func fewerThanTwoUnits() {
            let r = WelchTest.compare(
                control: SampleSummary(values: [3]), treatment: SampleSummary(values: [4, 5, 6]))
            #expect(r.delta == 2 && r.relativeLift == 2.0 / 3)
            #expect(r.pValue == nil && r.standardError == nil && r.confidenceInterval == nil && r.chanceToBeatControl == nil)
            #expect(r.note == "fewer than 2 units")
        }

        @Test func emptyGroup() {
            let r = WelchTest.compare(control: SampleSummary(values: [Double]()), treatment: SampleSummary(values: [1, 2]))
            #expect(r == Comparison(note: "empty group"))
        }

        @Test func noVariance() {
            let same = WelchTest.compare(control: SampleSummary(values: [2, 2, 2]), treatment: SampleSummary(values: [2, 2]))
            #expect(same.delta == 0 && same.pValue == nil && same.statistic == nil && same.note == "no variance")
            let differ = WelchTest.compare(control: SampleSummary(values: [2, 2, 2]), treatment: SampleSummary(values: [3, 3]))
            #expect(differ.delta == 1 && differ.pValue == nil && differ.confidenceInterval == nil)
            #expect(differ.note?.contains("no variance") == true)
        }

        @Test func zeroControlMean() {
            let r = WelchTest.compare(control: SampleSummary(values: [-1, 0, 1]), treatment: SampleSummary(values: [1, 2, 3]))
            #expect(r.relativeLift == nil && r.delta == 2 && r.pValue != nil)
            #expect(r.note?.contains("control mean is 0") == true)
            expectFinite(r)
        }

        /// Extreme summaries never produce NaN or infinity.
        @Test func extremesStayFinite() {
            let extremes: [SampleSummary] = [
                .init(n: 2, mean: 0, variance: 0), .init(n: 2, mean: 1e308, variance: 1e308),
                .init(n: 2, mean: -1e308, variance: 1e-308), .init(n: 1_000_000_000, mean: 1, variance: 1e-300),
                .init(n: 3, mean: .leastNonzeroMagnitude, variance: .leastNonzeroMagnitude), .init(n: Int.max, mean: 1, variance: 1),
                .init(n: 2, mean: 1, variance: .greatestFiniteMagnitude),
            ]
            for a in extremes {
                for b in extremes {
                    expectFinite(WelchTest.compare(control: a, treatment: b))
                }
            }
        }
    }
}

extension StatisticsTests {
    @Suite struct DeltaMethodTests {
        @Test(arguments: fixtures.ratio)
        func matchesIndependentImplementation(_ c: StatisticsFixtures.RatioCase) {
            let control = RatioSummary(numerators: c.control.num, denominators: c.control.den)
            let treatment = RatioSummary(numerators: c.treatment.num, denominators: c.treatment.den)
            let s1 = c.control.sums, s2 = c.treatment.sums
            let fromSums = [s1, s2].map {
                RatioSummary(
                    n: Int($0[0]), numeratorSum: $0[1], denominatorSum: $0[2],
                    numeratorSumOfSquares: $0[3], denominatorSumOfSquares: $0[4], sumOfProducts: $0[5])
            }
            for (summaries, tolerance) in [([control, treatment], 1e-9), (fromSums, 1e-9)] {
                expectClose(summaries[0].ratio, c.control.ratio, tolerance, "control ratio")
                expectClose(summaries[0].ratioVariance, c.control.variance, tolerance, "control variance")
                expectClose(summaries[1].ratioVariance, c.treatment.variance, tolerance, "treatment variance")
                let r = DeltaMethod.compare(control: summaries[0], treatment: summaries[1])
                expectFinite(r)
                #expect(r.note == nil && r.degreesOfFreedom == nil)
                expectClose(r.delta, c.delta, tolerance, "delta")
                expectClose(r.relativeLift, c.relativeLift, tolerance, "lift")
                expectClose(r.standardError, c.se, tolerance, "se")
                expectClose(r.statistic, c.statistic, tolerance, "z")
                expectClose(r.pValue, c.pvalue, tolerance, "p")
                expectClose(r.chanceToBeatControl, c.chance, tolerance, "chance")
                let scale = abs(c.delta) + 1.96 * c.se
                expectClose(r.confidenceInterval?.lowerBound, c.ci[0], tolerance, scale: scale, "ci low")
                expectClose(r.confidenceInterval?.upperBound, c.ci[1], tolerance, scale: scale, "ci high")
            }
        }

        @Test func edgeCases() {
            let ok = RatioSummary(numerators: [1, 0, 2], denominators: [3, 2, 4])
            let noDenominator = RatioSummary(numerators: [0, 0], denominators: [0, 0])
            #expect(noDenominator.ratio == nil && noDenominator.ratioVariance == nil)
            #expect(DeltaMethod.compare(control: noDenominator, treatment: ok).note == "denominator sum is 0")
            #expect(DeltaMethod.compare(control: RatioSummary(numerators: [], denominators: []), treatment: ok).note == "empty group")
            let single = DeltaMethod.compare(control: RatioSummary(numerators: [1], denominators: [2]), treatment: ok)
            #expect(single.delta != nil && single.pValue == nil && single.note == "fewer than 2 units")
            let flat = RatioSummary(numerators: [1, 1], denominators: [2, 2])
            let none = DeltaMethod.compare(control: flat, treatment: flat)
            #expect(none.delta == 0 && none.pValue == nil && none.note == "no variance")
            let zero = DeltaMethod.compare(control: RatioSummary(numerators: [0, 0], denominators: [1, 2]), treatment: ok)
            #expect(zero.relativeLift == nil && zero.pValue != nil && zero.note?.contains("control mean is 0") == true)
            expectFinite(zero)
        }
    }
}

extension StatisticsTests {
    @Suite struct QuantileTests {
        @Test func matchesNumPy() {
            for c in fixtures.quantile {
                for (q, expected) in zip(c.q, c.expected) {
                    #expect(Quantile.linear(c.values, q) == expected, "q=\(q) of \(c.values.count) values")
                }
            }
        }

        @Test func edgeCases() {
            #expect(Quantile.linear([], 0.5) == nil)
            #expect(Quantile.linear([1, 2], 1.5) == nil && Quantile.linear([1, 2], -0.1) == nil)
            #expect(Quantile.linear([1, .nan], 0.5) == nil)
            #expect(Quantile.linear(sorted: [1, 2, 3, 4], 1) == 4 && Quantile.linear(sorted: [1, 2, 3, 4], 0) == 1)
        }
    }
}

struct MultipleTestingTests {
    @Test func holmAndBenjaminiHochbergAreStatsmodels() {
        #expect(fixtures.multipletests.count >= 9)
        for case_ in fixtures.multipletests {
            for (method, expected) in [(MultipleTesting.Method.holm, case_.holm), (.bh, case_.bh)] {
                let adjusted = MultipleTesting.adjust(case_.p, method: method)
                #expect(adjusted.count == expected.count)
                for (a, e) in zip(adjusted, expected) {
                    #expect(abs(a - e) <= 1e-12 * max(1, abs(e)), "\(method) of \(case_.p): \(a) vs \(e)")
                }
            }
        }
        #expect(MultipleTesting.adjust([], method: .bh).isEmpty)
    }

    @Test func theMinimumDetectableEffectIsStatsmodelsNormalIndPower() {
        #expect(fixtures.mde.count >= 6)
        for c in fixtures.mde {
            let x = Power.detectableMultiple(alpha: c.alpha, power: c.power)
            #expect(abs(x - c.multiple) <= 1e-12 * c.multiple, "alpha \(c.alpha) power \(c.power): \(x) vs \(c.multiple)")
            // statsmodels stops its root finder within about 1e-5 of the root.
            #expect(abs(x - c.statsmodels) <= 1e-5 * c.multiple, "alpha \(c.alpha) power \(c.power): \(x) vs statsmodels \(c.statsmodels)")
        }
        #expect(Power.minimumDetectableEffect(standardError: 0.5)! == 0.5 * Power.detectableMultiple())
        #expect(Power.minimumDetectableEffect(standardError: nil) == nil && Power.minimumDetectableEffect(standardError: 0) == nil)
    }

    @Test func theAnalysisSettingsAreValidatedWithTheirPaths() {
        var body: [String: JSON] = [
            "key": "x", "variants": [["key": "a", "value": 1], ["key": "b", "value": 2]], "control": "a",
            "rules": [["serve": ["variant": "a"]]],
            "analysis": ["correction": "bonferroni", "sequential": "yes", "sequential_tuning": 0, "cuped": 1, "cuped_days": 91, "peeking": true],
        ]
        guard case .failure(let failure) = ExperimentValidator.validate(.object(body), context: .init(knownCohorts: [])) else {
            Issue.record("a wrong correction passed")
            return
        }
        #expect(Set(failure.issues.map(\.path)) == [
            "analysis.correction", "analysis.sequential", "analysis.sequential_tuning", "analysis.cuped", "analysis.cuped_days", "analysis.peeking",
        ])
        for days in [0.0, 1.5, -3] {
            body["analysis"] = ["cuped_days": .number(days)]
            guard case .failure(let failure) = ExperimentValidator.validate(.object(body), context: .init(knownCohorts: [])) else {
                Issue.record("cuped_days \(days) passed")
                continue
            }
            #expect(failure.issues.map(\.path) == ["analysis.cuped_days"])
        }
        body["analysis"] = ["correction": "holm", "sequential": true, "sequential_tuning": 0.5, "cuped": true, "cuped_days": 90]
        let settings = (try? ExperimentValidator.validate(.object(body), context: .init(knownCohorts: [])).get())?.analysis
        #expect(settings == AnalysisSettings(sequential: true, sequentialTuning: 0.5, cuped: true, cupedDays: 90, correction: .holm))
        body["analysis"] = nil
        let defaults = (try? ExperimentValidator.validate(.object(body), context: .init(knownCohorts: [])).get())?.analysis
        #expect(defaults == AnalysisSettings(sequential: false, sequentialTuning: 5000, cuped: false, cupedDays: 14, correction: .none))
        #expect(defaults?.json == ["sequential": false, "sequential_tuning": 5000, "cuped": false, "cuped_days": 14, "correction": "none"])
    }

    @Test func aReportAdjustsPrimaryAndSecondaryComparisonsOfTreatmentsOnly() {
        let definition = ExperimentDefinition(
            key: "three", variants: [Variant(key: "a", value: 1), Variant(key: "b", value: 2), Variant(key: "c", value: 3)], control: "a",
            rules: [Rule(name: "everyone", serve: .split([.init(variant: "a", weight: 3_334), .init(variant: "b", weight: 3_333), .init(variant: "c", weight: 3_333)]))],
            metrics: ExperimentMetrics(primary: ["m1"], secondary: ["m2"], guardrails: ["m3"]), analysis: AnalysisSettings(correction: .bh))
        let metrics = Dictionary(uniqueKeysWithValues: ["m1", "m2", "m3"].map { ($0, Metric(key: $0, kind: .sum, event: $0)) })
        func moments(_ mean: Double) -> MetricMoments { MetricMoments(n: 50, mean: mean, variance: 4) }
        let aggregates = [("a", 10.0), ("b", 10.6), ("c", 11.2)].map { variant, mean in
            GroupAggregate(key: ReportGroupKey(variant: variant), unitsWithEvents: 50, events: 100,
                           metrics: ["m1": moments(mean), "m2": moments(mean * 0.98), "m3": moments(mean)])
        }
        let report = ReportBuilder.build(
            experiment: definition, metrics: metrics, query: ReportQuery(), exposedUnits: ["a": 50, "b": 50, "c": 50], aggregates: aggregates)
        var raw: [Double] = []
        for group in report.groups where group.key.variant != "a" {
            for metric in group.metrics where metric.key != "m3" { raw.append(metric.comparison!.pValue!) }
        }
        let expected = MultipleTesting.adjust(raw, method: .bh)
        var shown: [Double] = []
        for group in report.groups {
            for metric in group.metrics {
                if group.key.variant == "a" || metric.key == "m3" {
                    #expect(metric.comparison?.adjustedPValue == nil, "\(group.key.variant) \(metric.key)")
                } else {
                    shown.append(metric.comparison!.adjustedPValue!)
                }
            }
        }
        #expect(shown == expected && shown.count == 4)
        #expect(report.csv.split(separator: "\r\n").first?.hasSuffix(",adjusted_p_value") == true)
    }
}
