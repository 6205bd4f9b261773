import Foundation

/// Always-valid 95 % intervals and p-values for a difference (docs/statistics.md, "Sequential
/// testing"), as GrowthBook computes them: the asymptotic confidence sequences of Waudby-Smith
/// et al., "Time-uniform central limit theory and asymptotic confidence sequences" (2023),
/// eq. 9 for the interval and eq. 155 for the p-value, as
/// `gbstats.frequentist.tests.SequentialTwoSidedTTest` on absolute differences. Looking at
/// them after every event keeps the chance of ever excluding a true zero difference at 5 %.
public enum SequentialTest {
    public static let alpha = 0.05

    /// ρ of the mixture (eq. 161): the sequence is tightest near `tuning` units in all.
    public static func rho(tuning: Double, alpha: Double = alpha) -> Double {
        ((-2 * log(alpha) + log(-2 * log(alpha) + 1)) / tuning).squareRoot()
    }

    /// The half-width of the always-valid interval of a difference whose variance is
    /// `variance` (of the difference itself, Σ s²/n) after `units` units in both groups.
    public static func halfWidth(variance: Double, units: Double, tuning: Double, alpha: Double = alpha) -> Double {
        let n = units, rho = rho(tuning: tuning, alpha: alpha)
        let spread = n * rho * rho + 1
        return (variance * n).squareRoot() * (2 * spread * log(spread.squareRoot() / alpha) / ((n * rho) * (n * rho))).squareRoot()
    }

    /// The always-valid p-value, min(1, 1/e) for the e-value e = exp(ρ²·S/(2·(Nρ² + 1))) / √(Nρ² + 1)
    /// with S = delta²·N / variance; computed in logarithms so a large S gives 0, not NaN.
    public static func pValue(delta: Double, variance: Double, units: Double, tuning: Double, alpha: Double = alpha) -> Double {
        let n = units, rho = rho(tuning: tuning, alpha: alpha)
        let spread = n * rho * rho + 1
        let logE = rho * rho * (delta * delta * n / variance) / (2 * spread) - 0.5 * log(spread)
        return logE <= 0 ? 1 : exp(-logE)
    }
}
