/// How an experiment's report analyses its numbers (docs/api.md, "The experiment document":
/// `analysis`; docs/statistics.md). Changing it changes no assignment.
public struct AnalysisSettings: Sendable, Hashable {
    /// Which correction for multiple comparisons the report's `adjusted_p_value` applies.
    public enum Correction: String, Sendable, Hashable, CaseIterable {
        case none, holm, bh
    }

    /// Always-valid intervals and p-values (`SequentialTest`) instead of fixed-horizon ones.
    public var sequential: Bool
    /// The confidence sequence's tuning parameter: the number of units at which it is tightest.
    public var sequentialTuning: Double
    /// Regression adjustment on each unit's pre-exposure value (`RegressionAdjustment`).
    public var cuped: Bool
    /// Days before a unit's first exposure whose events give its CUPED covariate.
    public var cupedDays: Int
    public var correction: Correction

    public static let cupedDaysRange = 1...90

    public init(
        sequential: Bool = false, sequentialTuning: Double = 5000, cuped: Bool = false, cupedDays: Int = 14,
        correction: Correction = .none
    ) {
        self.sequential = sequential
        self.sequentialTuning = sequentialTuning
        self.cuped = cuped
        self.cupedDays = cupedDays
        self.correction = correction
    }

    public var json: JSON {
        [
            "sequential": .bool(sequential), "sequential_tuning": .number(sequentialTuning), "cuped": .bool(cuped),
            "cuped_days": .number(Double(cupedDays)), "correction": .string(correction.rawValue),
        ]
    }

    /// The `analysis` object: every field optional, unknown ones refused.
    static func parse(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> AnalysisSettings {
        guard let value, !value.isNull, let o = issues.object(value, path) else { return AnalysisSettings() }
        issues.rejectUnknownFields(o, path, known: ["sequential", "sequential_tuning", "cuped", "cuped_days", "correction"])
        var settings = AnalysisSettings()
        settings.sequential = issues.bool(o["sequential"], path["sequential"]) ?? false
        if let tuning = issues.number(o["sequential_tuning"], path["sequential_tuning"]) {
            if tuning > 0, tuning.isFinite {
                settings.sequentialTuning = tuning
            } else {
                issues.add(path["sequential_tuning"], "must be a number above 0")
            }
        }
        settings.cuped = issues.bool(o["cuped"], path["cuped"]) ?? false
        if let days = issues.number(o["cuped_days"], path["cuped_days"]) {
            if days == days.rounded(), Double(cupedDaysRange.lowerBound)...Double(cupedDaysRange.upperBound) ~= days {
                settings.cupedDays = Int(days)
            } else {
                issues.add(path["cuped_days"], "must be a whole number of days from \(cupedDaysRange.lowerBound) to \(cupedDaysRange.upperBound)")
            }
        }
        settings.correction = issues.choice(o["correction"], path["correction"]) ?? Correction.none
        return settings
    }
}
