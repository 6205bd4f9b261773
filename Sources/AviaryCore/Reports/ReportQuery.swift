import Foundation

/// What a report groups by besides the variant (docs/api.md, "Reports": `by=`).
public enum ReportDimension: String, Sendable, Hashable, CaseIterable {
    case variant, model
    case appVersion = "app_version"
}

/// The options of one report: grouping and the time window.
public struct ReportQuery: Sendable, Hashable {
    /// Always starts with `.variant`; then `.model` and/or `.appVersion`, in that order.
    public var dimensions: [ReportDimension]
    /// Exposures and events at or after `from` and before `to` count.
    public var from: Date?
    public var to: Date?
    public var attribution: Attribution

    /// Which units and events count, and for which variant (`ExposureHistory`).
    public enum Attribution: Sendable, Hashable {
        /// An A/B report: units served exactly one variant, first exposed in the window, with
        /// their events from that exposure on.
        case firstExposure
        /// A rollout step: every event in the window, for the variant its unit was served at the
        /// event's time; a group's units are the units with such events.
        case servedAt
    }

    public init(dimensions: [ReportDimension] = [.variant], from: Date? = nil, to: Date? = nil, attribution: Attribution = .firstExposure) {
        var set = Set(dimensions)
        set.insert(.variant)
        self.dimensions = ReportDimension.allCases.filter(set.contains)
        self.from = from
        self.to = to
        self.attribution = attribution
    }

    public var groupsByModel: Bool { dimensions.contains(.model) }
    public var groupsByAppVersion: Bool { dimensions.contains(.appVersion) }
    /// Only variants: every exposed unit belongs to exactly one group.
    public var variantOnly: Bool { dimensions == [.variant] }

    /// Parses the query string values `by` (comma-separated dimensions; `variant` is implied),
    /// `from` and `to` (RFC 3339). Problems carry the parameter name as their path.
    public static func parse(by: String?, from: String?, to: String?) -> Result<ReportQuery, ValidationFailure> {
        var issues = IssueCollector()
        var dimensions: [ReportDimension] = []
        if let by {
            for (index, raw) in by.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
                let name = raw.trimmingCharacters(in: .whitespaces)
                if let dimension: ReportDimension = issues.choice(name, JSONPath.root["by"][index]) {
                    dimensions.append(dimension)
                }
            }
        }
        func date(_ text: String?, _ name: String) -> Date? {
            guard let text else { return nil }
            guard let date = Timestamp.parse(text) else {
                issues.add(JSONPath.root[name], "\"\(text.prefix(40))\" is not an RFC 3339 time such as 2026-11-27T05:00:00Z")
                return nil
            }
            return date
        }
        let fromDate = date(from, "from"), toDate = date(to, "to")
        if let fromDate, let toDate, fromDate >= toDate {
            issues.add(JSONPath.root["to"], "must be later than from")
        }
        guard issues.issues.isEmpty else { return .failure(ValidationFailure(issues.issues)) }
        return .success(ReportQuery(dimensions: dimensions, from: fromDate, to: toDate))
    }
}

/// One group of a report: a variant, and a model and app version when grouped by them.
public struct ReportGroupKey: Sendable, Hashable {
    public var variant: String
    public var model: String?
    public var appVersion: String?

    public init(variant: String, model: String? = nil, appVersion: String? = nil) {
        self.variant = variant
        self.model = model
        self.appVersion = appVersion
    }

    /// The control group to compare this group with: same model and app version.
    func withVariant(_ variant: String) -> ReportGroupKey {
        ReportGroupKey(variant: variant, model: model, appVersion: appVersion)
    }
}

/// What the database computes for one metric of one group, over the per-unit rows of units
/// that have at least one attributed event in the group (units without events are added by
/// `ReportBuilder` where the metric counts them as 0).
public struct MetricMoments: Sendable, Hashable {
    /// Per-unit rows with a value: units with events in the group (`mean`: units with the
    /// metric's event), or events for a quantile.
    public var n: Int
    /// Mean and sample variance (ddof = 1) of the per-unit value (a ratio's numerator).
    public var mean: Double?
    public var variance: Double?
    /// A ratio's per-unit denominator and the numerator–denominator covariance.
    public var denominatorMean: Double?
    public var denominatorVariance: Double?
    public var covariance: Double?
    /// A quantile's value.
    public var quantile: Double?

    public init(
        n: Int, mean: Double? = nil, variance: Double? = nil, denominatorMean: Double? = nil,
        denominatorVariance: Double? = nil, covariance: Double? = nil, quantile: Double? = nil
    ) {
        self.n = n
        self.mean = mean
        self.variance = variance
        self.denominatorMean = denominatorMean
        self.denominatorVariance = denominatorVariance
        self.covariance = covariance
        self.quantile = quantile
    }
}

/// The database's answer for one group.
public struct GroupAggregate: Sendable, Hashable {
    public var key: ReportGroupKey
    /// Units with at least one attributed event in the group.
    public var unitsWithEvents: Int
    /// Attributed events in the group.
    public var events: Int
    /// By metric key.
    public var metrics: [String: MetricMoments]

    public init(key: ReportGroupKey, unitsWithEvents: Int, events: Int, metrics: [String: MetricMoments]) {
        self.key = key
        self.unitsWithEvents = unitsWithEvents
        self.events = events
        self.metrics = metrics
    }
}
