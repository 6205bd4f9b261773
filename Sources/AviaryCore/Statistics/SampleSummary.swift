import Foundation

/// Count, mean and sample variance (ddof = 1) of one group's per-unit values.
///
/// Conventions for small groups: `mean` is 0 when `n` is 0 and `variance` is 0 when `n` < 2;
/// `standardDeviation` is nil then, and the tests check `n` before using either.
public struct SampleSummary: Sendable, Hashable {
    public var n: Int
    public var mean: Double
    /// Sample variance, Σ(x − mean)² / (n − 1).
    public var variance: Double

    public init(n: Int, mean: Double, variance: Double) {
        self.n = n
        self.mean = mean
        self.variance = variance
    }

    /// Summarizes raw values: a compensated sum for the mean (a difference of two large means
    /// is what the tests report) and the corrected two-pass algorithm for the variance.
    public init(values: some Collection<Double>) {
        n = values.count
        guard n > 0 else {
            mean = 0
            variance = 0
            return
        }
        let count = Double(n)
        let mean = compensatedSum(values) / count
        self.mean = mean
        guard n > 1 else {
            variance = 0
            return
        }
        var squares = 0.0, residual = 0.0
        for x in values {
            squares += (x - mean) * (x - mean)
            residual += x - mean
        }
        variance = max(0, (squares - residual * residual / count) / (count - 1))
    }

    /// Summarizes a group from its running sums n, Σx and Σx² (what SQL aggregates return).
    ///
    /// Σx² − (Σx)²/n cancels when the mean is large against the spread. A result below
    /// n·ε·Σx², the worst-case rounding of a plainly accumulated Σx², cannot be told from 0 and
    /// is taken as zero variance, so constant data reports "no variance" instead of a spurious
    /// tiny one (only data with a coefficient of variation under ~√(n·ε) is affected).
    public init(n: Int, sum: Double, sumOfSquares: Double) {
        self.n = max(n, 0)
        guard n > 0 else {
            mean = 0
            variance = 0
            return
        }
        let count = Double(n)
        mean = sum / count
        guard n > 1 else {
            variance = 0
            return
        }
        let centered = sumOfSquares - sum * mean
        variance = centered <= max(4, count) * Double.ulpOfOne * abs(sumOfSquares) ? 0 : centered / (count - 1)
    }

    /// √variance, or nil when `n` < 2.
    public var standardDeviation: Double? {
        n >= 2 ? variance.squareRoot() : nil
    }
}

/// Neumaier's compensated sum: error independent of the count, unlike a plain running sum.
func compensatedSum(_ values: some Sequence<Double>) -> Double {
    var sum = 0.0, compensation = 0.0
    for x in values {
        let t = sum + x
        compensation += abs(sum) >= abs(x) ? (sum - t) + x : (x - t) + sum
        sum = t
    }
    return sum + compensation
}
