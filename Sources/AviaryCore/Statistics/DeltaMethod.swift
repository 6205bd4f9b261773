import Foundation

/// One group of a ratio metric: per-unit numerator X and denominator Y, summarized by means,
/// sample variances and covariance (ddof = 1). The metric is Σnum / Σden = μx / μy.
public struct RatioSummary: Sendable, Hashable {
    public var n: Int
    public var numeratorMean: Double
    public var denominatorMean: Double
    public var numeratorVariance: Double
    public var denominatorVariance: Double
    public var covariance: Double

    public init(
        n: Int, numeratorMean: Double, denominatorMean: Double,
        numeratorVariance: Double, denominatorVariance: Double, covariance: Double
    ) {
        self.n = n
        self.numeratorMean = numeratorMean
        self.denominatorMean = denominatorMean
        self.numeratorVariance = numeratorVariance
        self.denominatorVariance = denominatorVariance
        self.covariance = covariance
    }

    /// Summarizes per-unit pairs (two-pass, centered on the means). Extra elements of the
    /// longer array are ignored.
    public init(numerators: [Double], denominators: [Double]) {
        let count = min(numerators.count, denominators.count)
        let xs = numerators.prefix(count), ys = denominators.prefix(count)
        let n = Double(count)
        let mx = count > 0 ? compensatedSum(xs) / n : 0
        let my = count > 0 ? compensatedSum(ys) / n : 0
        var sxx = 0.0, syy = 0.0, sxy = 0.0
        for (x, y) in zip(xs, ys) {
            sxx += (x - mx) * (x - mx)
            syy += (y - my) * (y - my)
            sxy += (x - mx) * (y - my)
        }
        let divisor = count > 1 ? n - 1 : 1
        self.init(
            n: count, numeratorMean: mx, denominatorMean: my,
            numeratorVariance: sxx / divisor, denominatorVariance: syy / divisor, covariance: sxy / divisor)
    }

    /// Summarizes a group from the SQL-style sums n, Σx, Σy, Σx², Σy², Σxy. As in
    /// `SampleSummary(n:sum:sumOfSquares:)`, a variance within rounding noise is taken as 0,
    /// and the covariance is kept within the Cauchy–Schwarz bound of the variances.
    public init(
        n: Int, numeratorSum: Double, denominatorSum: Double,
        numeratorSumOfSquares: Double, denominatorSumOfSquares: Double, sumOfProducts: Double
    ) {
        let x = SampleSummary(n: n, sum: numeratorSum, sumOfSquares: numeratorSumOfSquares)
        let y = SampleSummary(n: n, sum: denominatorSum, sumOfSquares: denominatorSumOfSquares)
        var covariance = 0.0
        if n > 1 {
            let bound = (x.variance * y.variance).squareRoot()
            let raw = (sumOfProducts - numeratorSum * y.mean) / Double(n - 1)
            covariance = min(max(raw, -bound), bound)
        }
        self.init(
            n: x.n, numeratorMean: x.mean, denominatorMean: y.mean,
            numeratorVariance: x.variance, denominatorVariance: y.variance, covariance: covariance)
    }

    /// Σnum / Σden, or nil when the denominators sum to 0.
    public var ratio: Double? {
        n > 0 && denominatorMean != 0 ? numeratorMean / denominatorMean : nil
    }

    /// Delta-method variance of the ratio estimate,
    /// (var X/μy² − 2 μx cov/μy³ + μx² var Y/μy⁴) / n, written as
    /// (var X − 2 r cov + r² var Y) / (μy² n) with r = μx/μy so that μy⁴ cannot overflow.
    /// Nil when n < 2 or the denominator mean is 0; clamped at 0 against rounding.
    public var ratioVariance: Double? {
        guard n >= 2, let r = ratio else { return nil }
        let numerator = numeratorVariance - 2 * r * covariance + r * r * denominatorVariance
        return max(0, numerator / (denominatorMean * denominatorMean) / Double(n))
    }
}

/// Comparison of two ratio metrics (Σnum / Σden per group) by the delta method.
///
/// The test is a z-test, not a t-test: the delta-method variance is itself a large-sample
/// approximation with no exact degrees of freedom, so the normal distribution is used for the
/// p-value and the 95 % interval (critical value 1.959963984540054).
public enum DeltaMethod {
    /// delta = treatment ratio − control ratio, se = √(v₁ + v₂), z = delta / se, two-sided
    /// normal p-value, delta ± 1.96 se, and chance to beat control Φ(z). With
    /// `sequentialTuning`, the always-valid interval and p-value of `SequentialTest` on the same
    /// delta and standard error.
    public static func compare(control: RatioSummary, treatment: RatioSummary, sequentialTuning: Double? = nil) -> Comparison {
        guard control.n > 0, treatment.n > 0 else { return Comparison(note: "empty group") }
        guard let r1 = control.ratio, let r2 = treatment.ratio else {
            return Comparison(note: "denominator sum is 0")
        }
        var result = Comparison(controlMean: r1, treatmentMean: r2)
        result.method = sequentialTuning == nil ? .delta : .sequential
        if control.n < 2 || treatment.n < 2 {
            result.addNote("fewer than 2 units")
        } else if let v1 = control.ratioVariance, let v2 = treatment.ratioVariance {
            if v1 + v2 > 0 {
                result.setTest(
                    standardError: (v1 + v2).squareRoot(), degreesOfFreedom: nil, units: Double(control.n) + Double(treatment.n),
                    sequentialTuning: sequentialTuning)
            } else {
                result.addNote(r1 == r2 ? "no variance" : "no variance, ratios differ")
            }
        }
        result.dropNonFinite()
        return result
    }
}
