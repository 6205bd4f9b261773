/// What a report does with one kind of metric: summarise a group's moments (as the report SQL
/// reads them, `AviaryPostgres/Reports/MetricSQL`) and test a treatment group against the
/// control. One type per kind, chosen by `Metric.Kind.report`; a new kind is a type here and
/// one in `MetricSQL`.
protocol MetricKindReport: Sendable {
    /// The group's values from its moments, units without events added as zeros where the
    /// kind counts them.
    func summarize(_ result: inout MetricResult, _ moments: MetricMoments, groupUnits: Int) -> MetricValues
    /// The comparison and, when CUPED was asked for and does not apply, why; nil when a group
    /// is empty.
    func compare(_ treatment: MetricValues, _ control: MetricValues, analysis: AnalysisSettings, tuning: Double?)
        -> (Comparison, cupedNote: String?)?
    /// The method a comparison that could not run names (nil: none).
    func untestedMethod(tuning: Double?) -> Comparison.Method?
}

extension MetricKindReport {
    func untestedMethod(tuning: Double?) -> Comparison.Method? { tuning == nil ? .welch : .sequential }

    static func fill(_ result: inout MetricResult, _ summary: SampleSummary, empty: String) {
        result.n = summary.n
        if summary.n == 0 {
            result.note = empty
        } else {
            result.mean = summary.mean
            result.stddev = summary.standardDeviation
            if summary.n < 2 { result.note = "stddev needs 2 units" }
        }
    }
}

extension Metric.Kind {
    var report: any MetricKindReport {
        switch self {
        case .count, .sum: return PerUnitTotalReport(proportion: false)
        case .proportion: return PerUnitTotalReport(proportion: true)
        case .mean: return MeanReport()
        case .ratio: return RatioReport()
        case .quantile: return QuantileReport()
        }
    }
}

private let cupedKinds = "CUPED applies to count, sum and proportion metrics"

/// Count, sum and proportion: a value every unit has (0 without events); Welch's test, or
/// CUPED's regression adjustment on the pre-exposure values.
struct PerUnitTotalReport: MetricKindReport {
    let proportion: Bool

    func summarize(_ result: inout MetricResult, _ moments: MetricMoments, groupUnits: Int) -> MetricValues {
        let zeros = max(0, groupUnits - moments.n)
        let summary = SampleSummary(n: moments.n, mean: moments.mean ?? 0, variance: moments.variance ?? 0).addingZeros(zeros)
        Self.fill(&result, summary, empty: "no units")
        // With CUPED, the pre-exposure values ride in the denominator's columns.
        var pairs: RatioSummary?
        if let preMean = moments.denominatorMean {
            pairs = RatioSummary(
                n: moments.n, numeratorMean: moments.mean ?? 0, denominatorMean: preMean, numeratorVariance: moments.variance ?? 0,
                denominatorVariance: moments.denominatorVariance ?? 0, covariance: moments.covariance ?? 0
            ).addingZeros(zeros)
        }
        return MetricValues(summary: summary.n > 0 ? summary : nil, pairs: pairs.flatMap { $0.n > 0 ? $0 : nil }, result: result)
    }

    func compare(_ treatment: MetricValues, _ control: MetricValues, analysis: AnalysisSettings, tuning: Double?)
        -> (Comparison, cupedNote: String?)?
    {
        guard let c = control.summary, let t = treatment.summary else { return nil }
        if analysis.cuped, let cp = control.pairs, let tp = treatment.pairs {
            return (RegressionAdjustment.compare(control: cp, treatment: tp, proportion: proportion, sequentialTuning: tuning), nil)
        }
        if proportion, analysis.sequential || analysis.cuped {
            // With gbstats' tests, gbstats' proportion variance p(1 − p).
            let comparison = WelchTest.compare(control: c.gbstats(proportion: true), treatment: t.gbstats(proportion: true), sequentialTuning: tuning)
            return (comparison, "CUPED applies to reports by variant")
        }
        return (WelchTest.compare(control: c, treatment: t, sequentialTuning: tuning), "CUPED applies to reports by variant")
    }
}

/// The mean of the events' values, over the units with such an event; Welch's test.
struct MeanReport: MetricKindReport {
    func summarize(_ result: inout MetricResult, _ moments: MetricMoments, groupUnits: Int) -> MetricValues {
        let summary = SampleSummary(n: moments.n, mean: moments.mean ?? 0, variance: moments.variance ?? 0)
        Self.fill(&result, summary, empty: "no units with this event")
        return MetricValues(summary: moments.n > 0 ? summary : nil, result: result)
    }

    func compare(_ treatment: MetricValues, _ control: MetricValues, analysis: AnalysisSettings, tuning: Double?)
        -> (Comparison, cupedNote: String?)?
    {
        guard let c = control.summary, let t = treatment.summary else { return nil }
        return (WelchTest.compare(control: c, treatment: t, sequentialTuning: tuning), cupedKinds)
    }
}

/// A numerator's sum over a denominator's, per unit; the delta method.
struct RatioReport: MetricKindReport {
    func summarize(_ result: inout MetricResult, _ moments: MetricMoments, groupUnits: Int) -> MetricValues {
        let zeros = max(0, groupUnits - moments.n)
        let ratio = RatioSummary(
            n: moments.n, numeratorMean: moments.mean ?? 0, denominatorMean: moments.denominatorMean ?? 0,
            numeratorVariance: moments.variance ?? 0, denominatorVariance: moments.denominatorVariance ?? 0,
            covariance: moments.covariance ?? 0
        ).addingZeros(zeros)
        result.n = ratio.n
        result.mean = ratio.ratio
        if ratio.n == 0 {
            result.note = "no units"
        } else if ratio.ratio == nil {
            result.note = "denominator sum is 0"
        }
        return MetricValues(ratio: ratio.n > 0 ? ratio : nil, result: result)
    }

    func compare(_ treatment: MetricValues, _ control: MetricValues, analysis: AnalysisSettings, tuning: Double?)
        -> (Comparison, cupedNote: String?)?
    {
        guard let c = control.ratio, let t = treatment.ratio else { return nil }
        return (DeltaMethod.compare(control: c, treatment: t, sequentialTuning: tuning), cupedKinds)
    }

    func untestedMethod(tuning: Double?) -> Comparison.Method? { tuning == nil ? .delta : .sequential }
}

/// A quantile of the events' values: shown, not tested.
struct QuantileReport: MetricKindReport {
    func summarize(_ result: inout MetricResult, _ moments: MetricMoments, groupUnits: Int) -> MetricValues {
        result.n = moments.n
        result.mean = moments.quantile
        if moments.n == 0 { result.note = "no events" }
        return MetricValues(result: result)
    }

    func compare(_ treatment: MetricValues, _ control: MetricValues, analysis: AnalysisSettings, tuning: Double?)
        -> (Comparison, cupedNote: String?)?
    {
        guard let c = control.result.mean, let t = treatment.result.mean else { return nil }
        var comparison = Comparison(controlMean: c, treatmentMean: t)
        comparison.addNote("quantiles are not tested")
        comparison.dropNonFinite()
        return (comparison, cupedKinds)
    }

    func untestedMethod(tuning: Double?) -> Comparison.Method? { nil }
}
