import Foundation

/// The χ² distribution and Pearson's goodness-of-fit test (the sample-ratio-mismatch check).
public enum ChiSquare {
    /// P(X > x) for X ~ χ²(ν), real ν > 0: the regularized upper incomplete gamma Q(ν/2, x/2),
    /// summed directly where it is small. NaN for ν ≤ 0 or NaN input.
    public static func sf(_ x: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !x.isNaN else { return .nan }
        return SpecialFunctions.regularizedGamma(a: df / 2, x: x / 2).q
    }

    /// P(X ≤ x) for X ~ χ²(ν).
    public static func cdf(_ x: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !x.isNaN else { return .nan }
        return SpecialFunctions.regularizedGamma(a: df / 2, x: x / 2).p
    }

    /// The outcome of a goodness-of-fit test; a value that cannot be computed is nil and `note`
    /// says why.
    public struct GoodnessOfFit: Sendable, Hashable {
        /// Pearson's Σ (observed − expected)² / expected.
        public var statistic: Double?
        public var pValue: Double?
        /// Categories − 1.
        public var degreesOfFreedom: Int
        public var note: String?
    }

    /// Pearson's χ² test of observed counts against expected shares, like
    /// `scipy.stats.chisquare(observed, total * proportions / sum(proportions))`.
    ///
    /// Categories with a zero share and no observations are left out (they carry no
    /// information). Observations in a zero-share category are a certain mismatch: p = 0 and
    /// the statistic, which would be infinite, is nil.
    public static func goodnessOfFit(observed: [Double], expectedProportions: [Double]) -> GoodnessOfFit {
        func failure(_ note: String, df: Int = 0) -> GoodnessOfFit {
            GoodnessOfFit(statistic: nil, pValue: nil, degreesOfFreedom: df, note: note)
        }
        guard observed.count == expectedProportions.count else {
            return failure("observed and expected have different lengths")
        }
        guard observed.allSatisfy({ $0.isFinite && $0 >= 0 }),
              expectedProportions.allSatisfy({ $0.isFinite && $0 >= 0 })
        else { return failure("counts and proportions must be finite and non-negative") }
        let shareTotal = expectedProportions.reduce(0, +)
        let total = observed.reduce(0, +)
        guard shareTotal > 0 else { return failure("expected proportions sum to 0") }
        guard total > 0 else { return failure("no observations") }

        let cells = zip(observed, expectedProportions).filter { $0.0 > 0 || $0.1 > 0 }
        let df = cells.count - 1
        guard df >= 1 else { return failure("fewer than 2 categories", df: max(df, 0)) }
        if cells.contains(where: { $0.0 > 0 && $0.1 == 0 }) {
            return GoodnessOfFit(
                statistic: nil, pValue: 0, degreesOfFreedom: df,
                note: "observations in a category with zero expected share")
        }
        var statistic = 0.0
        for (count, share) in cells {
            let expected = total * share / shareTotal
            statistic += (count - expected) * (count - expected) / expected
        }
        guard statistic.isFinite else { return failure("statistic overflowed", df: df) }
        return GoodnessOfFit(
            statistic: statistic, pValue: sf(statistic, degreesOfFreedom: Double(df)), degreesOfFreedom: df, note: nil)
    }
}
