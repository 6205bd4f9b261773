/// How large a difference a comparison can see (docs/statistics.md, "Minimum detectable
/// effect"), as statsmodels' `NormalIndPower().solve_power` finds it: the effect at which a
/// two-sided normal test at level α rejects with the given power, both tails counted.
public enum Power {
    /// The smallest absolute difference detectable with `power` at `alpha`, two-sided, for a
    /// difference whose standard error is `standardError`; nil without one.
    public static func minimumDetectableEffect(standardError: Double?, alpha: Double = 0.05, power: Double = 0.8) -> Double? {
        guard let standardError, standardError.isFinite, standardError > 0 else { return nil }
        return detectableMultiple(alpha: alpha, power: power) * standardError
    }

    /// x with Φ(x − z) + Φ(−x − z) = power, z = Φ⁻¹(1 − α/2): the effect in standard errors.
    /// The left side grows with x, so bisection finds it to the last bit.
    public static func detectableMultiple(alpha: Double = 0.05, power: Double = 0.8) -> Double {
        let z = Normal.quantile(1 - alpha / 2)
        func reached(_ x: Double) -> Double { Normal.cdf(x - z) + Normal.cdf(-x - z) }
        var low = 0.0, high = 64.0
        for _ in 0..<200 {
            let mid = (low + high) / 2
            if reached(mid) < power { low = mid } else { high = mid }
            if high - low <= 1e-15 * high { break }
        }
        return (low + high) / 2
    }
}
