import Foundation

/// CUPED (docs/statistics.md, "CUPED"): each unit's metric less θ times its value before
/// exposure, θ pooled over both groups, as gbstats' `RegressionAdjustedStatistic` with
/// `compute_theta` (Deng, Xu, Kohavi and Walker, "Improving the Sensitivity of Online
/// Controlled Experiments by Utilizing Pre-Experiment Data", WSDM 2013). The adjusted groups
/// are then compared as gbstats' `TwoSidedTTest` (Welch) or `SequentialTwoSidedTTest` does.
public enum RegressionAdjustment {
    /// One group's per-unit pairs (post, pre): the metric after first exposure and the same
    /// metric over the pre-exposure window, as the moments of `RatioSummary` (numerator = post,
    /// denominator = pre).
    public typealias Pairs = RatioSummary

    /// A proportion's variances are p(1 − p), as gbstats' `ProportionStatistic`; a count's or
    /// sum's the sample variance (`SampleMeanStatistic`). The covariance is the sample one.
    public static func postSummary(_ pairs: Pairs, proportion: Bool) -> SampleSummary {
        SampleSummary(n: pairs.n, mean: pairs.numeratorMean, variance: pairs.numeratorVariance).gbstats(proportion: proportion)
    }

    static func variance(_ mean: Double, _ sampleVariance: Double, _ n: Int, _ proportion: Bool) -> Double {
        guard n > 1 else { return 0 }
        return proportion ? mean * (1 - mean) : sampleVariance
    }

    /// θ = cov(post, pre) / var(pre) over both groups together; 0 when either variance is 0,
    /// which gbstats answers with the unadjusted test.
    public static func theta(control: Pairs, treatment: Pairs, proportion: Bool) -> Double {
        let joint = control.merged(with: treatment)
        let post = variance(joint.numeratorMean, joint.numeratorVariance, joint.n, proportion)
        let pre = variance(joint.denominatorMean, joint.denominatorVariance, joint.n, proportion)
        guard post > 0, pre > 0 else { return 0 }
        return joint.covariance / pre
    }

    /// A group's adjusted values: mean post − θ·pre, variance var post + θ²·var pre − 2θ·cov.
    public static func adjusted(_ pairs: Pairs, theta: Double, proportion: Bool) -> SampleSummary {
        let post = variance(pairs.numeratorMean, pairs.numeratorVariance, pairs.n, proportion)
        let pre = variance(pairs.denominatorMean, pairs.denominatorVariance, pairs.n, proportion)
        let covariance = pairs.n > 1 ? pairs.covariance : 0
        return SampleSummary(
            n: pairs.n, mean: pairs.numeratorMean - theta * pairs.denominatorMean,
            variance: post + theta * theta * pre - 2 * theta * covariance)
    }

    /// The adjusted comparison: delta of the adjusted means, its Welch (or, with
    /// `sequentialTuning`, always-valid) interval and p-value, relative lift against the
    /// control's unadjusted mean, and `cuped` with θ and the variance removed. With θ = 0 the
    /// unadjusted test, `cuped` nil and a note.
    public static func compare(control: Pairs, treatment: Pairs, proportion: Bool, sequentialTuning: Double? = nil) -> Comparison {
        let unadjustedControl = postSummary(control, proportion: proportion)
        let unadjustedTreatment = postSummary(treatment, proportion: proportion)
        let theta = control.n > 0 && treatment.n > 0 ? theta(control: control, treatment: treatment, proportion: proportion) : 0
        guard theta != 0, theta.isFinite else {
            var result = WelchTest.compare(control: unadjustedControl, treatment: unadjustedTreatment, sequentialTuning: sequentialTuning)
            if control.n > 0, treatment.n > 0 { result.addNote("CUPED not applied: no variance before or after exposure") }
            return result
        }
        let adjustedControl = adjusted(control, theta: theta, proportion: proportion)
        let adjustedTreatment = adjusted(treatment, theta: theta, proportion: proportion)
        var result = WelchTest.compare(control: adjustedControl, treatment: adjustedTreatment, sequentialTuning: sequentialTuning)
        if let delta = result.delta {
            result.relativeLift = unadjustedControl.mean != 0 ? delta / unadjustedControl.mean : nil
        }
        let before = unadjustedControl.variance / Double(control.n) + unadjustedTreatment.variance / Double(treatment.n)
        let after = adjustedControl.variance / Double(control.n) + adjustedTreatment.variance / Double(treatment.n)
        let reduction = before > 0 ? 1 - after / before : 0
        result.cuped = Comparison.Cuped(theta: theta, varianceReduction: reduction.isFinite ? reduction : 0)
        return result
    }
}

extension SampleSummary {
    /// The group as gbstats sees it: a proportion's variance p(1 − p) (`ProportionStatistic`),
    /// anything else's unchanged (`SampleMeanStatistic`); 0 under 2 units either way.
    public func gbstats(proportion: Bool) -> SampleSummary {
        SampleSummary(n: n, mean: mean, variance: RegressionAdjustment.variance(mean, variance, n, proportion))
    }
}

extension RatioSummary {
    /// The summary of both groups' pairs together (Chan et al.'s pairwise combination).
    func merged(with other: RatioSummary) -> RatioSummary {
        guard n > 0 else { return other }
        guard other.n > 0 else { return self }
        let na = Double(n), nb = Double(other.n), nt = na + nb
        let dx = other.numeratorMean - numeratorMean, dy = other.denominatorMean - denominatorMean
        let shift = na * nb / nt, divisor = nt - 1
        func m2(_ variance: Double, _ count: Double) -> Double { variance * max(count - 1, 0) }
        return RatioSummary(
            n: n + other.n,
            numeratorMean: numeratorMean + dx * nb / nt, denominatorMean: denominatorMean + dy * nb / nt,
            numeratorVariance: (m2(numeratorVariance, na) + m2(other.numeratorVariance, nb) + dx * dx * shift) / divisor,
            denominatorVariance: (m2(denominatorVariance, na) + m2(other.denominatorVariance, nb) + dy * dy * shift) / divisor,
            covariance: (m2(covariance, na) + m2(other.covariance, nb) + dx * dy * shift) / divisor)
    }
}
