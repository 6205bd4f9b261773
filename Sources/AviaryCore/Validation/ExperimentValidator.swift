/// What an experiment is checked against besides its own body: the cohorts that exist and the
/// layer ranges other experiments already hold.
public struct ExperimentValidationContext: Sendable {
    public struct LayerOccupant: Sendable, Hashable {
        public var experiment: String
        public var layer: String
        public var range: LayerRange

        public init(experiment: String, layer: String, range: LayerRange) {
            self.experiment = experiment
            self.layer = layer
            self.range = range
        }
    }

    /// Cohorts that exist; `nil` trusts every reference (for definitions read back from storage).
    public var knownCohorts: Set<String>?
    public var layerOccupants: [LayerOccupant]
    /// Metrics that exist (for rollout guardrails); `nil` trusts every reference.
    public var knownMetrics: Set<String>?
    /// Where rollout notices may go; `nil` allows any host.
    public var notifyHosts: NotifyHosts?

    public init(knownCohorts: Set<String>?, layerOccupants: [LayerOccupant] = [], knownMetrics: Set<String>? = nil, notifyHosts: NotifyHosts? = nil) {
        self.knownCohorts = knownCohorts
        self.layerOccupants = layerOccupants
        self.knownMetrics = knownMetrics
        self.notifyHosts = notifyHosts
    }
}

/// Validates experiment JSON (docs/api.md, "Experiments") into an `ExperimentDefinition`, reporting every problem.
public enum ExperimentValidator {
    public static let maxVariants = 100
    public static let maxRules = 100
    public static let maxTextLength = 10_000

    static let writableFields: Set<String> = [
        "key", "name", "description", "unit", "fallback_unit", "salt", "variants", "control", "rules",
        "opt_out", "layer", "layer_range", "metrics", "rollout", "analysis",
    ]
    /// Fields the server owns; accepted and ignored so a fetched experiment can be sent back as is.
    static let readOnlyFields: Set<String> = [
        "status", "winner", "revision", "created_at", "updated_at", "archived_at", "rollout_state",
    ]

    /// - Parameter expectedKey: the key from the URL of a `PUT`; the body's `key` may be omitted or must match.
    public static func validate(
        _ json: JSON, expectedKey: String? = nil, context: ExperimentValidationContext
    ) -> Result<ExperimentDefinition, ValidationFailure> {
        var issues = IssueCollector()
        let root = JSONPath.root
        guard let body = issues.object(json, root, required: true) else {
            return .failure(ValidationFailure(issues.issues))
        }
        issues.rejectUnknownFields(body, root, known: writableFields.union(readOnlyFields))

        var key = issues.key(body["key"], root["key"], required: expectedKey == nil)
        if let expectedKey {
            if let k = key, k != expectedKey {
                issues.add(root["key"], "is \"\(k)\" but the URL names \"\(expectedKey)\"")
            }
            key = expectedKey
        }
        let name = text(body["name"], root["name"], &issues)
        let description = text(body["description"], root["description"], &issues)
        let unit = unitKind(body["unit"], root["unit"], &issues) ?? .userID
        let fallbackUnit = unitKind(body["fallback_unit"], root["fallback_unit"], &issues)
        if let fallbackUnit, fallbackUnit == unit {
            issues.add(root["fallback_unit"], "must differ from unit \"\(unit.rawValue)\"")
        }
        var salt = issues.string(body["salt"], root["salt"])
        if let s = salt, s.isEmpty || s.utf8.count > 128 {
            issues.add(root["salt"], "must be 1 to 128 characters")
            salt = nil
        }

        let variants = parseVariants(body["variants"], root["variants"], &issues)
        let variantKeys = Set(variants.map(\.key))
        let control = issues.key(body["control"], root["control"], required: true)
        if let control, !variants.isEmpty, !variantKeys.contains(control) {
            issues.add(root["control"], "names \"\(control)\", which is not one of the variants")
        }

        let rules = parseRules(body["rules"], root["rules"], variantKeys: variantKeys, cohorts: context.knownCohorts, &issues)

        let optOut = issues.bool(body["opt_out"], root["opt_out"]) ?? true
        let (layer, layerRange) = parseLayer(body, key: key, context: context, &issues)
        let metrics = parseMetrics(body["metrics"], root["metrics"], &issues)
        let analysis = AnalysisSettings.parse(body["analysis"], root["analysis"], &issues)

        let rollout = RolloutValidator.parse(
            body["rollout"], root["rollout"], variants: variants, control: control, rules: rules,
            knownMetrics: context.knownMetrics, notifyHosts: context.notifyHosts, &issues)

        guard issues.isEmpty, let key, let control else {
            return .failure(ValidationFailure(issues.issues))
        }
        return .success(
            ExperimentDefinition(
                key: key, name: name, description: description ?? "", unit: unit, fallbackUnit: fallbackUnit,
                salt: salt, variants: variants, control: control, rules: rules, optOut: optOut, layer: layer,
                layerRange: layerRange, metrics: metrics, rollout: rollout, analysis: analysis
            ))
    }

    static func text(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> String? {
        guard let s = issues.string(value, path) else { return nil }
        if s.utf8.count > maxTextLength {
            issues.add(path, "must be at most \(maxTextLength) bytes")
            return nil
        }
        return s
    }

    static func unitKind(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> UnitKind? {
        guard let s = issues.string(value, path) else { return nil }
        guard let u = UnitKind(rawValue: s) else {
            issues.add(path, "must be \"user_id\" or \"anonymous_id\", not \"\(s.prefix(80))\"")
            return nil
        }
        return u
    }

    static func parseVariants(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> [Variant] {
        guard let items = issues.array(value, path, required: true) else { return [] }
        if items.isEmpty { issues.add(path, "needs at least one variant") }
        if items.count > maxVariants { issues.add(path, "at most \(maxVariants) variants, not \(items.count)") }
        var variants: [Variant] = []
        var seen: Set<String> = []
        for (i, item) in items.enumerated() {
            let p = path[i]
            guard let object = issues.object(item, p, required: true) else { continue }
            issues.rejectUnknownFields(object, p, known: ["key", "value", "name"])
            guard let key = issues.key(object["key"], p["key"], required: true) else { continue }
            if !seen.insert(key).inserted {
                issues.add(p["key"], "variant \"\(key)\" is listed twice")
                continue
            }
            let name = text(object["name"], p["name"], &issues)
            variants.append(Variant(key: key, value: object["value"] ?? .null, name: name))
        }
        return variants
    }

    static func parseRules(
        _ value: JSON?, _ path: JSONPath, variantKeys: Set<String>, cohorts: Set<String>?, _ issues: inout IssueCollector
    ) -> [Rule] {
        guard let items = issues.array(value, path) else { return [] }
        if items.count > maxRules { issues.add(path, "at most \(maxRules) rules, not \(items.count)") }
        let conditions = ConditionParser(knownCohorts: cohorts)
        var rules: [Rule] = []
        var names: Set<String> = []
        for (i, item) in items.enumerated() {
            let p = path[i]
            guard let object = issues.object(item, p, required: true) else { continue }
            issues.rejectUnknownFields(object, p, known: ["name", "when", "serve", "traffic"])
            let name = issues.key(object["name"], p["name"]) ?? "rule-\(i)"
            if !names.insert(name).inserted { issues.add(p["name"], "rule name \"\(name)\" is used twice") }
            var when: Condition?
            if let w = object["when"], !w.isNull { when = conditions.parse(w, at: p["when"], issues: &issues) }
            let serve = parseServe(object["serve"], p["serve"], variantKeys: variantKeys, &issues)
            let traffic = issues.percent(object["traffic"], p["traffic"]) ?? 10_000
            if let serve { rules.append(Rule(name: name, when: when, serve: serve, traffic: traffic)) }
        }
        return rules
    }

    static func parseServe(_ value: JSON?, _ path: JSONPath, variantKeys: Set<String>, _ issues: inout IssueCollector) -> Serve? {
        guard let object = issues.object(value, path, required: true) else { return nil }
        issues.rejectUnknownFields(object, path, known: ["variant", "split"])
        switch (object["variant"], object["split"]) {
        case (let v?, nil):
            guard let key = issues.key(v, path["variant"], required: true) else { return nil }
            guard variantKeys.isEmpty || variantKeys.contains(key) else {
                issues.add(path["variant"], "names \"\(key)\", which is not one of the variants")
                return nil
            }
            return .variant(key)
        case (nil, let s?):
            return parseSplit(s, path["split"], variantKeys: variantKeys, &issues).map(Serve.split)
        case (nil, nil):
            issues.add(path, "needs \"variant\" or \"split\"")
            return nil
        case (.some, .some):
            issues.add(path, "has both \"variant\" and \"split\"; give one")
            return nil
        }
    }

    static func parseSplit(_ value: JSON, _ path: JSONPath, variantKeys: Set<String>, _ issues: inout IssueCollector) -> [SplitEntry]? {
        guard let items = issues.array(value, path, required: true) else { return nil }
        guard !items.isEmpty else {
            issues.add(path, "needs at least one variant")
            return nil
        }
        var entries: [SplitEntry] = []
        var seen: Set<String> = []
        var ok = true
        for (i, item) in items.enumerated() {
            let p = path[i]
            guard let object = issues.object(item, p, required: true) else {
                ok = false
                continue
            }
            issues.rejectUnknownFields(object, p, known: ["variant", "weight"])
            let key = issues.key(object["variant"], p["variant"], required: true)
            let weight = issues.percent(object["weight"], p["weight"], required: true)
            if let key {
                if !variantKeys.isEmpty, !variantKeys.contains(key) {
                    issues.add(p["variant"], "names \"\(key)\", which is not one of the variants")
                    ok = false
                } else if !seen.insert(key).inserted {
                    issues.add(p["variant"], "variant \"\(key)\" appears twice in this split")
                    ok = false
                }
            }
            if let key, let weight { entries.append(SplitEntry(variant: key, weight: weight)) } else { ok = false }
        }
        guard ok else { return nil }
        let total = entries.reduce(0) { $0 + $1.weight }
        guard total == 10_000 else {
            // Weights that sum to 1 or less look like fractions: say what they are.
            let fractions = total <= 100 ? " (weights are percents: 50 and 50, not 0.5 and 0.5)" : ""
            issues.add(path, "weights sum to \(Percent.format(hundredths: total)), not 100\(fractions)")
            return nil
        }
        return entries
    }

    static func parseLayer(
        _ body: [String: JSON], key: String?, context: ExperimentValidationContext, _ issues: inout IssueCollector
    ) -> (String?, LayerRange?) {
        let root = JSONPath.root
        let layer = issues.key(body["layer"], root["layer"])
        var range: LayerRange?
        let rp = root["layer_range"]
        if let items = issues.array(body["layer_range"], rp) {
            if items.count != 2 {
                issues.add(rp, "must be [start, end] in percent")
            } else {
                let start = issues.percent(items[0], rp[0], required: true)
                let end = issues.percent(items[1], rp[1], required: true)
                if let start, let end {
                    if start < end { range = LayerRange(start: start, end: end) } else { issues.add(rp, "start must be below end") }
                }
            }
        }
        switch (body["layer"].map { !$0.isNull } ?? false, body["layer_range"].map { !$0.isNull } ?? false) {
        case (true, false): issues.add(rp, "is required when layer is set")
        case (false, true): issues.add(root["layer"], "is required when layer_range is set")
        default: break
        }
        if let layer, let range {
            for other in context.layerOccupants where other.layer == layer && other.experiment != key && other.range.overlaps(range) {
                issues.add(
                    rp,
                    "overlaps [\(Percent.format(hundredths: other.range.start)), \(Percent.format(hundredths: other.range.end))) of experiment \"\(other.experiment)\" in layer \"\(layer)\""
                )
            }
        }
        return (layer, range)
    }

    static func parseMetrics(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> ExperimentMetrics {
        guard let object = issues.object(value, path) else { return ExperimentMetrics() }
        issues.rejectUnknownFields(object, path, known: ["primary", "secondary", "guardrails"])
        func keys(_ field: String) -> [String] {
            guard let items = issues.array(object[field], path[field]) else { return [] }
            return items.enumerated().compactMap { issues.key($0.element, path[field][$0.offset], required: true) }
        }
        return ExperimentMetrics(primary: keys("primary"), secondary: keys("secondary"), guardrails: keys("guardrails"))
    }
}

/// Validation problems of one request body, reported together.
public struct ValidationFailure: Error, Sendable, Equatable {
    public var issues: [ValidationIssue]

    public init(_ issues: [ValidationIssue]) { self.issues = issues }

    /// The problems in one line, as error messages give them.
    public static func summary(_ issues: [ValidationIssue]) -> String {
        guard let first = issues.first else { return "the request is invalid" }
        return issues.count == 1 ? first.description : "\(issues.count) problems, the first: \(first.description)"
    }

    public var summary: String { Self.summary(issues) }
}
