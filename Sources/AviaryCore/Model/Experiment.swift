import Foundation

/// Which context identity is hashed for an experiment.
public enum UnitKind: String, Sendable, Hashable, CaseIterable, Codable {
    case userID = "user_id"
    case anonymousID = "anonymous_id"
}

public enum ExperimentStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case draft, running, paused, stopped
    case rolledBack = "rolled_back"
}

public struct Variant: Sendable, Hashable {
    public var key: String
    public var value: JSON
    public var name: String?

    public init(key: String, value: JSON, name: String? = nil) {
        self.key = key
        self.value = value
        self.name = name
    }
}

/// One slice of a split; `weight` is in hundredths of a percent (0 ... 10_000).
public struct SplitEntry: Sendable, Hashable {
    public var variant: String
    public var weight: Int

    public init(variant: String, weight: Int) {
        self.variant = variant
        self.weight = weight
    }
}

public enum Serve: Sendable, Hashable {
    case variant(String)
    case split([SplitEntry])

    public var variantKeys: [String] {
        switch self {
        case .variant(let v): [v]
        case .split(let s): s.map(\.variant)
        }
    }
}

public struct Rule: Sendable, Hashable {
    public var name: String
    public var when: Condition?
    public var serve: Serve
    /// Share of matching units that take part, in hundredths of a percent.
    public var traffic: Int

    public init(name: String, when: Condition? = nil, serve: Serve, traffic: Int = 10_000) {
        self.name = name
        self.when = when
        self.serve = serve
        self.traffic = traffic
    }
}

/// `[start, end)` of a layer, in hundredths of a percent.
public struct LayerRange: Sendable, Hashable {
    public var start: Int
    public var end: Int

    public init(start: Int, end: Int) {
        self.start = start
        self.end = end
    }

    public func overlaps(_ other: LayerRange) -> Bool { start < other.end && other.start < end }
}

public struct ExperimentMetrics: Sendable, Hashable {
    public var primary: [String] = []
    public var secondary: [String] = []
    public var guardrails: [String] = []

    public init(primary: [String] = [], secondary: [String] = [], guardrails: [String] = []) {
        self.primary = primary
        self.secondary = secondary
        self.guardrails = guardrails
    }
}

/// What a user writes: everything of an experiment but its lifecycle state.
public struct ExperimentDefinition: Sendable, Hashable {
    public var key: String
    public var name: String
    public var description: String
    public var unit: UnitKind
    public var fallbackUnit: UnitKind?
    public var salt: String
    public var variants: [Variant]
    public var control: String
    public var rules: [Rule]
    public var optOut: Bool
    public var layer: String?
    public var layerRange: LayerRange?
    public var metrics: ExperimentMetrics
    public var rollout: RolloutPlan?
    public var analysis: AnalysisSettings

    public init(
        key: String, name: String? = nil, description: String = "", unit: UnitKind = .userID, fallbackUnit: UnitKind? = nil,
        salt: String? = nil, variants: [Variant], control: String, rules: [Rule], optOut: Bool = true,
        layer: String? = nil, layerRange: LayerRange? = nil, metrics: ExperimentMetrics = .init(), rollout: RolloutPlan? = nil,
        analysis: AnalysisSettings = AnalysisSettings()
    ) {
        self.analysis = analysis
        self.key = key
        self.name = name ?? key
        self.description = description
        self.unit = unit
        self.fallbackUnit = fallbackUnit
        self.salt = salt ?? key
        self.variants = variants
        self.control = control
        self.rules = rules
        self.optOut = optOut
        self.layer = layer
        self.layerRange = layerRange
        self.metrics = metrics
        self.rollout = rollout
    }

    public func variant(_ key: String) -> Variant? { variants.first { $0.key == key } }

    /// Cohorts referenced by any rule.
    public var cohortReferences: Set<String> {
        rules.reduce(into: Set()) { $0.formUnion($1.when?.cohortReferences ?? []) }
    }
}

/// A stored experiment: its definition plus lifecycle state and bookkeeping.
public struct Experiment: Sendable, Hashable {
    public var definition: ExperimentDefinition
    public var status: ExperimentStatus
    public var winner: String?
    public var revision: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var archivedAt: Date?
    /// Where the rollout is, once the experiment with a `rollout` has started.
    public var rolloutState: RolloutState?

    public init(
        definition: ExperimentDefinition, status: ExperimentStatus = .draft, winner: String? = nil, revision: Int = 1,
        createdAt: Date = Date(), updatedAt: Date = Date(), archivedAt: Date? = nil, rolloutState: RolloutState? = nil
    ) {
        self.rolloutState = rolloutState
        self.definition = definition
        self.status = status
        self.winner = winner
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.archivedAt = archivedAt
    }

    public var key: String { definition.key }
    public var isArchived: Bool { archivedAt != nil }
}
