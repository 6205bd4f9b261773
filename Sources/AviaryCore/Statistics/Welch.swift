import Foundation

/// Welch's unequal-variance t-test of two groups' means, as
/// `scipy.stats.ttest_ind(treatment, control, equal_var=False)` with its
/// `confidence_interval(0.95)`.
public enum WelchTest {
    /// Compares treatment against control: delta = treatment − control, standard error
    /// √(s₁²/n₁ + s₂²/n₂), Welch–Satterthwaite degrees of freedom, two-sided p-value, 95 % CI
    /// delta ± t₀.₉₇₅,df · se, and chance to beat control Φ(delta / se).
    ///
    /// With `sequentialTuning` the interval and p-value are the always-valid ones of
    /// `SequentialTest` instead (same delta and standard error).
    ///
    /// Without a test (a group under 2 units, or no variance in either group) the test fields
    /// are nil and `note` says why; delta and lift are still given when both groups have units.
    public static func compare(control: SampleSummary, treatment: SampleSummary, sequentialTuning: Double? = nil) -> Comparison {
        var result = test(control: control, treatment: treatment, sequentialTuning: sequentialTuning)
        result.dropNonFinite()
        return result
    }

    private static func test(control: SampleSummary, treatment: SampleSummary, sequentialTuning: Double?) -> Comparison {
        guard control.n > 0, treatment.n > 0 else {
            return Comparison(note: "empty group")
        }
        var result = Comparison(controlMean: control.mean, treatmentMean: treatment.mean)
        result.method = sequentialTuning == nil ? .welch : .sequential
        guard control.n >= 2, treatment.n >= 2 else {
            result.addNote("fewer than 2 units")
            return result
        }
        let a1 = control.variance / Double(control.n)
        let a2 = treatment.variance / Double(treatment.n)
        let total = a1 + a2
        guard total > 0 else {
            result.addNote(control.mean == treatment.mean ? "no variance" : "no variance, means differ")
            return result
        }
        // Shares of the total variance, so the squares below cannot underflow or overflow.
        let r1 = a1 / total, r2 = a2 / total
        let df = 1 / (r1 * r1 / Double(control.n - 1) + r2 * r2 / Double(treatment.n - 1))
        result.setTest(
            standardError: total.squareRoot(), degreesOfFreedom: df, units: Double(control.n) + Double(treatment.n), sequentialTuning: sequentialTuning)
        return result
    }
}
