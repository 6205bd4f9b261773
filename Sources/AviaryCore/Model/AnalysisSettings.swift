/// How an experiment's report analyses its numbers (docs/api.md, "The experiment document":
/// `analysis`). Changing it changes no assignment.
public struct AnalysisSettings: Sendable, Hashable {
    /// Which correction for multiple comparisons the report's `adjusted_p_value` applies.
    public enum Correction: String, Sendable, Hashable, CaseIterable {
        case none, holm, bh
    }

    public var correction: Correction

    public init(correction: Correction = .none) {
        self.correction = correction
    }

    public var json: JSON { ["correction": .string(correction.rawValue)] }

    /// The `analysis` object: every field optional, unknown ones refused.
    static func parse(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> AnalysisSettings {
        guard let value, !value.isNull, let o = issues.object(value, path) else { return AnalysisSettings() }
        issues.rejectUnknownFields(o, path, known: ["correction"])
        return AnalysisSettings(correction: issues.choice(o["correction"], path["correction"]) ?? Correction.none)
    }
}
