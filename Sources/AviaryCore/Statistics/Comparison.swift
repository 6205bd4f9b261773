/// A treatment group against control. Every field that cannot be computed is nil and `note`
/// says why, so a report never carries NaN or infinity.
public struct Comparison: Sendable, Hashable {
    /// Which interval and p-value the comparison gives (`method` of docs/api.md, "Reports").
    public enum Method: String, Sendable, Hashable {
        /// Welch's t-test, fixed horizon.
        case welch
        /// The delta method's z-test of a ratio, fixed horizon.
        case delta
        /// Always-valid (`SequentialTest`).
        case sequential
    }

    /// What CUPED did to the comparison (`RegressionAdjustment`).
    public struct Cuped: Sendable, Hashable {
        /// The pooled regression coefficient of the metric on its pre-exposure value.
        public var theta: Double
        /// 1 − adjusted / unadjusted variance of delta: the share of the variance removed.
        public var varianceReduction: Double

        public init(theta: Double, varianceReduction: Double) {
            self.theta = theta
            self.varianceReduction = varianceReduction
        }
    }

    /// nil for a comparison that is not tested (quantiles).
    public var method: Method?
    /// nil when CUPED is off or does not apply (`note` says why).
    public var cuped: Cuped?
    /// Treatment − control.
    public var delta: Double?
    /// delta / control mean; nil when the control mean is 0.
    public var relativeLift: Double?
    /// Standard error of `delta`.
    public var standardError: Double?
    /// Welch–Satterthwaite degrees of freedom; nil for a z-test.
    public var degreesOfFreedom: Double?
    /// t (Welch) or z (delta method) statistic, delta / standardError.
    public var statistic: Double?
    /// Two-sided p-value of `statistic`.
    public var pValue: Double?
    /// 95 % confidence interval of `delta`.
    public var confidenceInterval: ClosedRange<Double>?
    /// P(treatment > control) under a normal approximation of the difference, Φ(delta / se).
    public var chanceToBeatControl: Double?
    /// `pValue` corrected for the report's family of comparisons (`AnalysisSettings.correction`).
    public var adjustedPValue: Double?
    /// The smallest absolute difference this comparison detects with 80 % power at α = 0.05.
    public var minimumDetectableEffect: Double? { Power.minimumDetectableEffect(standardError: standardError) }
    /// Why some fields are nil ("; "-joined when there are several reasons).
    public var note: String?

    public init(
        delta: Double? = nil, relativeLift: Double? = nil, standardError: Double? = nil,
        degreesOfFreedom: Double? = nil, statistic: Double? = nil, pValue: Double? = nil,
        confidenceInterval: ClosedRange<Double>? = nil, chanceToBeatControl: Double? = nil, note: String? = nil
    ) {
        self.delta = delta
        self.relativeLift = relativeLift
        self.standardError = standardError
        self.degreesOfFreedom = degreesOfFreedom
        self.statistic = statistic
        self.pValue = pValue
        self.confidenceInterval = confidenceInterval
        self.chanceToBeatControl = chanceToBeatControl
        self.note = note
    }

    /// Starts a comparison from the two group means: delta and relative lift.
    init(controlMean: Double, treatmentMean: Double) {
        self.init(delta: treatmentMean - controlMean)
        if controlMean == 0 {
            addNote("control mean is 0, relative lift undefined")
        } else {
            relativeLift = (treatmentMean - controlMean) / controlMean
        }
    }

    mutating func addNote(_ reason: String) {
        note = note.map { "\($0); \(reason)" } ?? reason
    }

    /// Fills the test fields from delta and its standard error: with `sequentialTuning` the
    /// always-valid test over `units` units (`SequentialTest`), otherwise a Welch t-test when
    /// `df` is given, or a z-test.
    mutating func setTest(standardError se: Double, degreesOfFreedom df: Double?, units: Double, sequentialTuning: Double?) {
        method = sequentialTuning != nil ? .sequential : df == nil ? .delta : .welch
        guard let delta else { return }
        let statistic = delta / se
        let variance = se * se
        let usable = sequentialTuning != nil ? variance > 0 && variance.isFinite : df.map { $0.isFinite && $0 > 0 } ?? true
        guard se.isFinite, se > 0, statistic.isFinite, usable else {
            addNote("values too large to test")
            return
        }
        let halfWidth: Double, pValue: Double
        if let tuning = sequentialTuning {
            halfWidth = SequentialTest.halfWidth(variance: variance, units: units, tuning: tuning)
            pValue = SequentialTest.pValue(delta: delta, variance: variance, units: units, tuning: tuning)
        } else if let df {
            halfWidth = StudentT.quantile(0.975, degreesOfFreedom: df) * se
            pValue = StudentT.twoSidedPValue(statistic, degreesOfFreedom: df)
        } else {
            halfWidth = Self.zCritical95 * se
            pValue = 2 * Normal.sf(abs(statistic))
        }
        let low = delta - halfWidth, high = delta + halfWidth
        guard low.isFinite, high.isFinite else {
            addNote("values too large to test")
            return
        }
        standardError = se
        degreesOfFreedom = sequentialTuning == nil ? df : nil
        self.statistic = statistic
        self.pValue = pValue
        confidenceInterval = low...high
        chanceToBeatControl = Normal.cdf(statistic)
    }

    /// Φ⁻¹(0.975), the 95 % two-sided normal critical value.
    public static let zCritical95 = 1.959963984540054

    /// Replaces any non-finite number by nil, so the "never NaN" promise holds on every path.
    mutating func dropNonFinite() {
        let finite = { (value: Double?) in value.map(\.isFinite) ?? true }
        guard !(finite(delta) && finite(relativeLift) && finite(degreesOfFreedom)) else { return }
        if !finite(delta) { delta = nil }
        if !finite(relativeLift) { relativeLift = nil }
        if !finite(degreesOfFreedom) { degreesOfFreedom = nil }
        addNote("a value was not finite")
    }
}
