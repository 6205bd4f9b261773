import Foundation

/// A named aggregation of events per unit (docs/api.md, "Metrics").
public struct Metric: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case count, sum, mean, proportion, ratio, quantile

        /// Whether CUPED adjusts it: a per-unit value every unit has, 0 without events.
        public var takesCovariate: Bool { self == .count || self == .sum || self == .proportion }
    }

    /// `where` of a proportion: which event values count.
    public struct ValueFilter: Sendable, Hashable {
        public var comparison: String  // eq, neq, gt, gte, lt, lte
        public var operand: Double

        public init(comparison: String, operand: Double) {
            self.comparison = comparison
            self.operand = operand
        }
    }

    public var key: String
    public var name: String
    public var description: String
    public var kind: Kind
    /// The event type counted (every kind but ratio).
    public var event: String?
    public var filter: ValueFilter?
    public var numerator: String?
    public var denominator: String?
    public var quantile: Double?
    public var revision: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        key: String, name: String? = nil, description: String = "", kind: Kind, event: String? = nil, filter: ValueFilter? = nil,
        numerator: String? = nil, denominator: String? = nil, quantile: Double? = nil, revision: Int = 1,
        createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.key = key
        self.name = name ?? key
        self.description = description
        self.kind = kind
        self.event = event
        self.filter = filter
        self.numerator = numerator
        self.denominator = denominator
        self.quantile = quantile
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    public var json: JSON {
        var o: [String: JSON] = [
            "key": .string(key), "name": .string(name), "description": .string(description), "kind": .string(kind.rawValue),
            "revision": .number(Double(revision)), "created_at": .string(Timestamp.format(createdAt)),
            "updated_at": .string(Timestamp.format(updatedAt)),
        ]
        if let event { o["event"] = .string(event) }
        if let filter { o["where"] = [filter.comparison: .number(filter.operand)] }
        if let numerator { o["numerator"] = .string(numerator) }
        if let denominator { o["denominator"] = .string(denominator) }
        if let quantile { o["q"] = .number(quantile) }
        return .object(o)
    }
}

/// Validates metric JSON: `{"event", "kind", "where"?, "numerator"?, "denominator"?, "q"?}`.
public enum MetricValidator {
    public static func validate(_ json: JSON, key: String) -> Result<Metric, ValidationFailure> {
        var issues = IssueCollector()
        let root = JSONPath.root
        if !Key.isValid(key) { issues.add(root["key"], "\"\(key.prefix(80))\" is not a valid key") }
        guard let body = issues.object(json, root, required: true) else { return .failure(ValidationFailure(issues.issues)) }
        issues.rejectUnknownFields(
            body, root,
            known: ["key", "name", "description", "kind", "event", "where", "numerator", "denominator", "q", "revision", "created_at", "updated_at"])
        if let k = issues.key(body["key"], root["key"]), k != key { issues.add(root["key"], "is \"\(k)\" but the URL names \"\(key)\"") }
        let name = ExperimentValidator.text(body["name"], root["name"], &issues)
        let description = ExperimentValidator.text(body["description"], root["description"], &issues)
        let kind: Metric.Kind? = issues.choice(body["kind"], root["kind"], required: true)
        func eventType(_ field: String, required: Bool) -> String? {
            guard let t = issues.string(body[field], root[field], required: required) else { return nil }
            guard Key.isValid(t) || (t.hasPrefix("$") && Key.isValid(String(t.dropFirst()))) else {
                issues.add(root[field], "\"\(t.prefix(80))\" is not a valid event type")
                return nil
            }
            return t
        }
        var event: String?, numerator: String?, denominator: String?, quantile: Double?, filter: Metric.ValueFilter?
        if let kind {
            let isRatio = kind == .ratio
            event = eventType("event", required: !isRatio)
            numerator = eventType("numerator", required: isRatio)
            denominator = eventType("denominator", required: isRatio)
            if isRatio, body["event"] != nil { issues.add(root["event"], "a ratio takes numerator and denominator, not event") }
            if !isRatio {
                for field in ["numerator", "denominator"] where body[field] != nil { issues.add(root[field], "only ratio metrics take \(field)") }
            }
            if kind == .quantile {
                if let q = issues.number(body["q"], root["q"], required: true) {
                    if q > 0, q < 1 { quantile = q } else { issues.add(root["q"], "must be between 0 and 1 (exclusive)") }
                }
            } else if body["q"] != nil {
                issues.add(root["q"], "only quantile metrics take q")
            }
            if let w = issues.object(body["where"], root["where"]) {
                if kind != .proportion {
                    issues.add(root["where"], "only proportion metrics take where")
                } else if w.count != 1 || !["eq", "neq", "gt", "gte", "lt", "lte"].contains(w.keys.first!) {
                    issues.add(root["where"], "must be one of {\"eq\"|\"neq\"|\"gt\"|\"gte\"|\"lt\"|\"lte\": number}")
                } else if let (op, value) = w.first, let n = issues.number(value, root["where"][op], required: true) {
                    filter = Metric.ValueFilter(comparison: op, operand: n)
                }
            }
        }
        guard issues.isEmpty, let kind else { return .failure(ValidationFailure(issues.issues)) }
        return .success(
            Metric(
                key: key, name: name ?? key, description: description ?? "", kind: kind, event: event, filter: filter, numerator: numerator,
                denominator: denominator, quantile: quantile, revision: 1, createdAt: Date(), updatedAt: Date()))
    }
}
