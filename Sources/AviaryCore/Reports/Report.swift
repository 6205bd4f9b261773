import Foundation

/// One metric of one report group (docs/api.md, "Reports"). Every number that cannot be computed is nil and
/// `note` says why; `comparison` is nil for the control's own groups.
public struct MetricResult: Sendable, Hashable {
    public var key: String
    /// nil when the experiment names a metric that is not defined.
    public var kind: Metric.Kind?
    /// Units the value is computed over (events for a quantile).
    public var n: Int
    /// The group's value: the mean per unit, the ratio Σnum/Σden, or the quantile.
    public var mean: Double?
    /// Sample standard deviation of the per-unit values (count, sum, mean, proportion).
    public var stddev: Double?
    /// A quantile metric's q.
    public var q: Double?
    public var comparison: Comparison?
    public var note: String?
}

public struct ReportGroup: Sendable, Hashable {
    public var key: ReportGroupKey
    public var units: Int
    public var events: Int
    /// In the experiment's metric order (primary, secondary, guardrails).
    public var metrics: [MetricResult]
}

/// An experiment's report: groups with their metrics and comparisons against control, and the
/// sample-ratio-mismatch check.
public struct Report: Sendable {
    public var experiment: String
    public var control: String
    public var query: ReportQuery
    /// Exposed units per variant, in the experiment's variant order: units served that variant
    /// and no other.
    public var exposedUnits: [(variant: String, units: Int)]
    /// Units served more than one variant, left out of every group (`ExposureHistory`).
    public var multipleExposures: Int
    /// Above this share of exposed units, multiple exposures are flagged.
    public static let multipleExposuresThreshold = 0.01
    public var multipleExposuresWarning: Bool {
        let exposed = multipleExposures + exposedUnits.reduce(0) { $0 + $1.units }
        return exposed > 0 && Double(multipleExposures) > Self.multipleExposuresThreshold * Double(exposed)
    }
    public var srm: ChiSquare.GoodnessOfFit
    /// Below this p-value the split is flagged (`srm_warning`).
    public static let srmThreshold = 0.001
    public var srmWarning: Bool { (srm.pValue ?? 1) < Self.srmThreshold }
    public var groups: [ReportGroup]
    /// The rollout section (docs/api.md, "Rollouts"); nil for an experiment without a rollout.
    public var rollout: ReportRollout?
    /// Which database answered: `primary` or `replica` (docs/operations.md, "A read replica").
    public var source = "primary"
    /// The read replica's replay lag when the report was read; nil without a replica, or when
    /// it did not answer.
    public var replicaLagSeconds: Double?
}

/// Turns the database's per-group aggregates into a report: adds the zero-valued units,
/// computes means, deviations and comparisons against the control group of the same
/// model/app version, and the SRM test. Pure; the statistics are `AviaryCore/Statistics`.
public enum ReportBuilder {
    /// The metric keys an experiment reports, in order, each once.
    public static func metricKeys(of definition: ExperimentDefinition) -> [String] {
        var seen = Set<String>()
        return (definition.metrics.primary + definition.metrics.secondary + definition.metrics.guardrails)
            .filter { seen.insert($0).inserted }
    }

    /// - Parameters:
    ///   - metrics: the defined metrics among `metricKeys(of:)`, by key.
    ///   - exposedUnits: units exposed per variant in the window (served no other variant).
    ///   - multipleExposures: units served more than one variant.
    ///   - aggregates: one per group that has attributed events.
    public static func build(
        experiment: ExperimentDefinition, metrics: [String: Metric], query: ReportQuery,
        exposedUnits: [String: Int], multipleExposures: Int = 0, aggregates: [GroupAggregate], rollout: ReportRollout? = nil
    ) -> Report {
        let keys = metricKeys(of: experiment)
        var byKey: [ReportGroupKey: GroupAggregate] = [:]
        for aggregate in aggregates { byKey[aggregate.key] = aggregate }

        // Groups: every variant when grouping by variant only (empty ones included), else the
        // observed combinations, in variant order and then by model and app version.
        let groupKeys: [ReportGroupKey]
        if query.variantOnly {
            groupKeys = experiment.variants.map { ReportGroupKey(variant: $0.key) }
        } else {
            let order = Dictionary(uniqueKeysWithValues: experiment.variants.enumerated().map { ($1.key, $0) })
            // Absent models and versions (events without them) sort first.
            func rank(_ k: ReportGroupKey) -> (Int, String, Int, String, Int, String) {
                (order[k.variant] ?? Int.max, k.variant, k.model == nil ? 0 : 1, k.model ?? "",
                 k.appVersion == nil ? 0 : 1, k.appVersion ?? "")
            }
            groupKeys = byKey.keys.sorted { rank($0) < rank($1) }
        }

        func units(of key: ReportGroupKey) -> Int {
            query.variantOnly ? exposedUnits[key.variant, default: 0] : byKey[key]?.unitsWithEvents ?? 0
        }

        // Per-group values first; comparisons need the control's.
        var values: [ReportGroupKey: [MetricValues]] = [:]
        for key in groupKeys {
            let aggregate = byKey[key]
            let groupUnits = units(of: key)
            values[key] = keys.map { metricKey in
                guard let metric = metrics[metricKey] else {
                    return MetricValues(result: MetricResult(key: metricKey, kind: nil, n: 0, note: "metric \"\(metricKey)\" is not defined"))
                }
                return summarize(metric, aggregate?.metrics[metricKey], groupUnits: groupUnits)
            }
        }

        var groups: [ReportGroup] = []
        for key in groupKeys {
            var results: [MetricResult] = []
            let control = values[key.withVariant(experiment.control)]
            for (index, value) in values[key, default: []].enumerated() {
                var result = value.result
                if key.variant != experiment.control, let kind = result.kind {
                    result.comparison = compare(value, control?[index], kind: kind, analysis: experiment.analysis, query: query)
                }
                results.append(result)
            }
            groups.append(ReportGroup(key: key, units: units(of: key), events: byKey[key]?.events ?? 0, metrics: results))
        }

        correct(&groups, experiment)

        let observed = experiment.variants.map { Double(exposedUnits[$0.key, default: 0]) }
        let srm: ChiSquare.GoodnessOfFit
        switch expectedShares(experiment) {
        case .success(let shares):
            srm = ChiSquare.goodnessOfFit(observed: observed, expectedProportions: shares)
        case .failure(let reason):
            srm = ChiSquare.GoodnessOfFit(statistic: nil, pValue: nil, degreesOfFreedom: 0, note: reason.message)
        }
        return Report(
            experiment: experiment.key, control: experiment.control, query: query,
            exposedUnits: experiment.variants.map { ($0.key, exposedUnits[$0.key, default: 0]) },
            multipleExposures: multipleExposures, srm: srm, groups: groups, rollout: rollout)
    }

    /// Adds `adjustedPValue` to every comparison of a primary or secondary metric of every
    /// group that is not the control's, corrected across all of them together as the
    /// experiment's `analysis.correction` says; nothing without a correction.
    static func correct(_ groups: inout [ReportGroup], _ experiment: ExperimentDefinition) {
        let method: MultipleTesting.Method
        switch experiment.analysis.correction {
        case .none: return
        case .holm: method = .holm
        case .bh: method = .bh
        }
        let family = Set(experiment.metrics.primary + experiment.metrics.secondary)
        var places: [(group: Int, metric: Int)] = [], pValues: [Double] = []
        for (g, group) in groups.enumerated() where group.key.variant != experiment.control {
            for (m, metric) in group.metrics.enumerated() where family.contains(metric.key) {
                guard let p = metric.comparison?.pValue, p.isFinite else { continue }
                places.append((g, m))
                pValues.append(p)
            }
        }
        for (place, adjusted) in zip(places, MultipleTesting.adjust(pValues, method: method)) {
            groups[place.group].metrics[place.metric].comparison?.adjustedPValue = adjusted
        }
    }

    /// A treatment group's metric against the control group's, as the experiment's `analysis`
    /// says: sequential or fixed-horizon, CUPED where it applies (docs/statistics.md). The test
    /// is the metric kind's (`MetricKindReport`).
    private static func compare(
        _ treatment: MetricValues, _ control: MetricValues?, kind: Metric.Kind, analysis: AnalysisSettings, query: ReportQuery
    ) -> Comparison {
        guard let control else { return Comparison(note: "no control group with this model and app version") }
        let tuning = analysis.sequential ? analysis.sequentialTuning : nil
        let rules = kind.report
        guard var (comparison, cupedNote) = rules.compare(treatment, control, analysis: analysis, tuning: tuning) else {
            return Comparison(note: "empty group")
        }
        // Also where no test could run (a ratio whose denominators sum to 0): the method it would use.
        if let method = rules.untestedMethod(tuning: tuning), comparison.method == nil { comparison.method = method }
        if analysis.cuped, comparison.cuped == nil, let cupedNote, comparison.note?.contains("CUPED") != true {
            comparison.addNote(cupedNote)
        }
        return comparison
    }

    struct Reason: Error { var message: String }

    /// The configured weights the SRM test expects: the split of the catch-all rule (the last
    /// rule without `when`), the one every unit not singled out by targeting goes through.
    static func expectedShares(_ experiment: ExperimentDefinition) -> Result<[Double], Reason> {
        guard let rule = experiment.rules.last(where: { $0.when == nil }) else {
            return .failure(Reason(message: "no catch-all rule (a rule without when) gives the weights to test against"))
        }
        guard case .split(let split) = rule.serve else {
            return .failure(Reason(message: "the catch-all rule serves one variant: there is no split to test"))
        }
        return .success(experiment.variants.map { variant in
            Double(split.filter { $0.variant == variant.key }.reduce(0) { $0 + $1.weight })
        })
    }

    /// One metric of one group from its database moments, with units without events added as
    /// zeros where the metric counts them (`MetricKindReport.summarize`).
    static func summarize(_ metric: Metric, _ moments: MetricMoments?, groupUnits: Int) -> MetricValues {
        var result = MetricResult(key: metric.key, kind: metric.kind, n: 0, q: metric.quantile)
        return metric.kind.report.summarize(&result, moments ?? MetricMoments(n: 0), groupUnits: groupUnits)
    }
}

/// One metric of one group before comparison: the summary a test needs, and the result so far.
struct MetricValues {
    var summary: SampleSummary?
    var ratio: RatioSummary?
    /// (post, pre) per unit, for CUPED: a count, sum or proportion whose report read its
    /// pre-exposure values.
    var pairs: RatioSummary?
    var result: MetricResult
}

extension SampleSummary {
    /// The summary of these values and `count` more zeros (Chan et al.'s pairwise update with
    /// an all-zero group: M₂ = M₂ₐ + mean² · nₐ · count / n).
    public func addingZeros(_ count: Int) -> SampleSummary {
        guard count > 0 else { return self }
        let total = n + count
        let na = Double(n), nb = Double(count), nt = Double(total)
        let m2 = variance * max(na - 1, 0) + mean * mean * na * nb / nt
        return SampleSummary(n: total, mean: mean * na / nt, variance: total > 1 ? m2 / (nt - 1) : 0)
    }
}

extension RatioSummary {
    /// The summary of these pairs and `count` more (0, 0) pairs.
    public func addingZeros(_ count: Int) -> RatioSummary {
        guard count > 0 else { return self }
        let total = n + count
        let na = Double(n), nb = Double(count), nt = Double(total)
        let scale = max(na - 1, 0), shift = na * nb / nt, divisor = total > 1 ? nt - 1 : 1
        return RatioSummary(
            n: total,
            numeratorMean: numeratorMean * na / nt, denominatorMean: denominatorMean * na / nt,
            numeratorVariance: (numeratorVariance * scale + numeratorMean * numeratorMean * shift) / divisor,
            denominatorVariance: (denominatorVariance * scale + denominatorMean * denominatorMean * shift) / divisor,
            covariance: (covariance * scale + numeratorMean * denominatorMean * shift) / divisor)
    }
}
