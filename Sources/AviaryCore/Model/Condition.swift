/// A targeting condition (docs/api.md, "Experiments": conditions). Parsed and checked at write time; evaluation never fails.
public indirect enum Condition: Sendable, Hashable {
    case attribute(String, AttributeOperator)
    case cohort(String)
    case all([Condition])
    case any([Condition])
    case not(Condition)

    /// Deepest nesting level; a leaf is 1.
    public var depth: Int {
        switch self {
        case .attribute, .cohort: 1
        case .all(let c), .any(let c): 1 + (c.map(\.depth).max() ?? 0)
        case .not(let c): 1 + c.depth
        }
    }

    /// Every cohort this condition refers to directly.
    public var cohortReferences: Set<String> {
        switch self {
        case .attribute: []
        case .cohort(let key): [key]
        case .all(let c), .any(let c): c.reduce(into: Set()) { $0.formUnion($1.cohortReferences) }
        case .not(let c): c.cohortReferences
        }
    }
}

/// A scalar operand of `eq`, `neq`, `in` and `not_in`.
public enum Scalar: Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)

    public var json: JSON {
        switch self {
        case .string(let s): .string(s)
        case .number(let n): .number(n)
        case .bool(let b): .bool(b)
        }
    }
}

public enum SemverComparison: String, Sendable, Hashable, CaseIterable {
    case lt = "semver_lt", lte = "semver_lte", gt = "semver_gt", gte = "semver_gte", eq = "semver_eq"
}

public enum NumericComparison: String, Sendable, Hashable, CaseIterable {
    case lt, lte, gt, gte
}

public enum AttributeOperator: Sendable, Hashable {
    case eq(Scalar)
    case neq(Scalar)
    case `in`([Scalar])
    case notIn([Scalar])
    case contains(String)
    case startsWith(String)
    case endsWith(String)
    case exists(Bool)
    case numeric(NumericComparison, Double)
    case semver(SemverComparison, SemanticVersion)
    /// The pattern is compiled once when a configuration snapshot is built.
    case matches(String)

    public static let names: [String] = [
        "eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "exists",
        "lt", "lte", "gt", "gte", "semver_lt", "semver_lte", "semver_gt", "semver_gte", "semver_eq", "matches",
    ]

    public var name: String {
        switch self {
        case .eq: "eq"
        case .neq: "neq"
        case .in: "in"
        case .notIn: "not_in"
        case .contains: "contains"
        case .startsWith: "starts_with"
        case .endsWith: "ends_with"
        case .exists: "exists"
        case .numeric(let c, _): c.rawValue
        case .semver(let c, _): c.rawValue
        case .matches: "matches"
        }
    }

    public var operandJSON: JSON {
        switch self {
        case .eq(let s), .neq(let s): s.json
        case .in(let l), .notIn(let l): .array(l.map(\.json))
        case .contains(let s), .startsWith(let s), .endsWith(let s), .matches(let s): .string(s)
        case .exists(let b): .bool(b)
        case .numeric(_, let n): .number(n)
        case .semver(_, let v): .string(v.description)
        }
    }
}

extension Condition {
    public var json: JSON {
        switch self {
        case .attribute(let name, let op): ["attr": .string(name), op.name: op.operandJSON]
        case .cohort(let key): ["cohort": .string(key)]
        case .all(let c): ["all": .array(c.map(\.json))]
        case .any(let c): ["any": .array(c.map(\.json))]
        case .not(let c): ["not": c.json]
        }
    }
}
