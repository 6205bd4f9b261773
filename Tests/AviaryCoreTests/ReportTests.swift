@testable import AviaryCore
import Foundation
import Testing

@Suite struct ReportTests {
    static func close(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-12) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= tolerance * max(1, abs(b))
    }

    @Test func addingZerosEqualsSummarizingTheZeros() {
        let values = [3.0, 0.5, 7.25, 1, 1, 9]
        for zeros in [0, 1, 5, 1000] {
            let folded = SampleSummary(values: values).addingZeros(zeros)
            let direct = SampleSummary(values: values + Array(repeating: 0, count: zeros))
            #expect(folded.n == direct.n)
            #expect(Self.close(folded.mean, direct.mean))
            #expect(Self.close(folded.variance, direct.variance))
        }
        // One unit with a value and one without: variance from the pair.
        let pair = SampleSummary(values: [4]).addingZeros(1)
        #expect(pair.n == 2 && pair.mean == 2 && pair.variance == 8)
        #expect(SampleSummary(values: []).addingZeros(3) == SampleSummary(n: 3, mean: 0, variance: 0))
    }

    @Test func ratioAddingZerosEqualsSummarizingTheZeroPairs() {
        let xs = [1.0, 0, 2, 5, 3], ys = [4.0, 2, 2, 9, 3]
        let folded = RatioSummary(numerators: xs, denominators: ys).addingZeros(7)
        let direct = RatioSummary(numerators: xs + Array(repeating: 0, count: 7), denominators: ys + Array(repeating: 0, count: 7))
        #expect(folded.n == direct.n)
        for (a, b) in [
            (folded.numeratorMean, direct.numeratorMean), (folded.denominatorMean, direct.denominatorMean),
            (folded.numeratorVariance, direct.numeratorVariance), (folded.denominatorVariance, direct.denominatorVariance),
            (folded.covariance, direct.covariance),
        ] {
            #expect(Self.close(a, b))
        }
    }

    @Test func queryParsing() throws {
        let q = try ReportQuery.parse(by: "model,variant", from: "2026-11-01T00:00:00Z", to: nil).get()
        #expect(q.dimensions == [.variant, .model])
        #expect(!q.variantOnly && q.groupsByModel && !q.groupsByAppVersion)
        #expect(try ReportQuery.parse(by: nil, from: nil, to: nil).get().variantOnly)
        guard case .failure(let failure) = ReportQuery.parse(by: "variant,colour", from: "soon", to: nil) else {
            Issue.record("accepted a bad query")
            return
        }
        #expect(failure.issues.map(\.path) == ["by[1]", "from"])
        guard case .failure(let order) = ReportQuery.parse(by: nil, from: "2026-11-02T00:00:00Z", to: "2026-11-01T00:00:00Z") else {
            Issue.record("accepted from after to")
            return
        }
        #expect(order.issues.map(\.path) == ["to"])
    }

    static let experiment = ExperimentDefinition(
        key: "model-eval",
        variants: [Variant(key: "gpt-4", value: "a"), Variant(key: "qwen", value: "b")], control: "gpt-4",
        rules: [
            Rule(name: "staff", when: .cohort("internal"), serve: .variant("qwen")),
            Rule(name: "everyone", serve: .split([SplitEntry(variant: "gpt-4", weight: 7500), SplitEntry(variant: "qwen", weight: 2500)])),
        ],
        metrics: ExperimentMetrics(primary: ["rating"], secondary: ["messages", "rating"], guardrails: ["missing"]))

    static func metric(_ key: String, _ kind: Metric.Kind, event: String) -> Metric {
        Metric(key: key, kind: kind, event: event)
    }

    @Test func buildFoldsZerosComparesAndChecksTheSplit() throws {
        let metrics = ["rating": Self.metric("rating", .mean, event: "rating"), "messages": Self.metric("messages", .count, event: "message")]
        // gpt-4: 4 exposed units, 2 with events; qwen: 3 exposed, all with events.
        let aggregates = [
            GroupAggregate(
                key: ReportGroupKey(variant: "gpt-4"), unitsWithEvents: 2, events: 5,
                metrics: ["rating": MetricMoments(n: 2, mean: 3, variance: 2), "messages": MetricMoments(n: 2, mean: 1.5, variance: 0.5)]),
            GroupAggregate(
                key: ReportGroupKey(variant: "qwen"), unitsWithEvents: 3, events: 9,
                metrics: ["rating": MetricMoments(n: 3, mean: 4, variance: 1), "messages": MetricMoments(n: 3, mean: 2, variance: 1)]),
        ]
        let report = ReportBuilder.build(
            experiment: Self.experiment, metrics: metrics, query: ReportQuery(), exposedUnits: ["gpt-4": 4, "qwen": 3],
            aggregates: aggregates)
        #expect(report.groups.map(\.key.variant) == ["gpt-4", "qwen"])
        #expect(report.groups.map(\.units) == [4, 3])
        let control = report.groups[0].metrics, treatment = report.groups[1].metrics
        #expect(control.map(\.key) == ["rating", "messages", "missing"])
        // messages of gpt-4: values {1, 2} plus two zeros → mean 0.75.
        #expect(control[1].n == 4 && Self.close(control[1].mean, 0.75))
        #expect(Self.close(control[1].stddev, SampleSummary(values: [1, 2, 0, 0]).standardDeviation!))
        // rating (mean) leaves units without events out.
        #expect(control[0].n == 2 && control[0].mean == 3)
        #expect(control[0].comparison == nil)
        #expect(treatment[0].comparison?.delta == 1)
        #expect(treatment[2].kind == nil && treatment[2].note?.contains("not defined") == true)
        // SRM against the catch-all split 75/25 (SciPy: chisquare([4, 3], [5.25, 1.75]).pvalue).
        #expect(Self.close(report.srm.pValue, 0.27523352407483115, 1e-9))
        #expect(!report.srmWarning)
        let csv = report.csv
        #expect(csv.hasPrefix(Report.csvColumns.joined(separator: ",") + "\r\n"))
        #expect(csv.components(separatedBy: "\r\n").count == 1 + 2 * 3 + 1)
        let text = String(decoding: report.json.canonicalData(), as: UTF8.self)
        #expect(!text.contains("NaN") && !text.contains("inf"))
        // Numbers as the JSON writes them: integral ones without a fraction, others shortest.
        #expect(Report.csvNumber(4) == "4" && Report.csvNumber(-12) == "-12" && Report.csvNumber(0.1) == "0.1")
        #expect(Report.csvNumber(2.5e-7) == "2.5e-07" && Report.csvNumber(1e20) == "1e+20" && Report.csvNumber(.nan) == "")
        #expect(!csv.contains(".0,") && !csv.contains(".0\r\n"), "\(csv)")
    }

    @Test func csvFieldsAreQuotedAndFormulasDefused() {
        var report = ReportBuilder.build(
            experiment: Self.experiment, metrics: [:], query: ReportQuery(dimensions: [.model]), exposedUnits: [:],
            aggregates: [GroupAggregate(key: ReportGroupKey(variant: "qwen", model: "=cmd|\"x\",y"), unitsWithEvents: 1, events: 1, metrics: [:])])
        report.groups = Array(report.groups.prefix(1))
        let row = report.csv.components(separatedBy: "\r\n")[1]
        #expect(row.hasPrefix("qwen,\"'=cmd|\"\"x\"\",y\","))
    }
}
