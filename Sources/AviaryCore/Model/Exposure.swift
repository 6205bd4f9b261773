import Foundation

/// A unit served a variant of an experiment at a time: by assignment, or by an event naming the
/// experiment and the variant. Each unit's exposures make its `ExposureHistory`.
public struct Exposure: Sendable, Hashable {
    public var experiment: String
    public var unit: String
    public var variant: String
    public var at: Date
    public var country: String?
    public var appVersion: String?

    public init(experiment: String, unit: String, variant: String, at: Date, country: String? = nil, appVersion: String? = nil) {
        self.experiment = experiment
        self.unit = unit
        self.variant = variant
        self.at = at
        self.country = country
        self.appVersion = appVersion
    }
}

/// Which unit a request or an event counts for in an experiment (docs/api.md, "Which variant
/// an event counts for"): its id of the experiment's `unit` kind, else its id of the
/// `fallback_unit` kind. The one statement of the rule: assignment reads it (`Assigner`),
/// ingestion applies it to the events that name an experiment, and the report SQL's joins are
/// written from `order` (`AviaryPostgres/ReportSQL`), checked against `ExposureHistory`.
public struct Attribution: Sendable, Hashable {
    public var unit: UnitKind
    public var fallback: UnitKind?

    public init(unit: UnitKind, fallback: UnitKind?) {
        self.unit = unit
        self.fallback = fallback
    }

    public init(_ definition: ExperimentDefinition) {
        self.init(unit: definition.unit, fallback: definition.fallbackUnit)
    }

    /// The id kinds in the order they are tried: the unit, then the fallback.
    public var order: [UnitKind] { fallback.map { [unit, $0] } ?? [unit] }

    /// The unit among the ids `id` gives for each kind (nil: the request or event has none).
    @inlinable
    public func unit(_ id: (UnitKind) -> String?) -> String? {
        if let primary = id(unit) { return primary }
        return fallback.flatMap(id)
    }

    /// The unit of an event with these ids; an empty id counts as none.
    public func unit(userID: String?, anonymousID: String?) -> String? {
        unit { kind in
            let id = kind == .userID ? userID : anonymousID
            return id?.isEmpty == false ? id : nil
        }
    }
}
