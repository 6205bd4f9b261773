/// Turns condition JSON into a `Condition`, reporting every problem with its JSON path.
public struct ConditionParser: Sendable {
    public static let maxDepth = 8
    public static let maxPatternLength = 256
    public static let maxListLength = 10_000
    public static let maxAttributeNameLength = 128

    /// Cohorts that may be referenced; `nil` skips the existence check.
    public var knownCohorts: Set<String>?

    public init(knownCohorts: Set<String>?) {
        self.knownCohorts = knownCohorts
    }

    public func parse(_ json: JSON, at path: JSONPath, issues: inout IssueCollector) -> Condition? {
        parse(json, at: path, depth: 1, issues: &issues)
    }

    private func parse(_ json: JSON, at path: JSONPath, depth: Int, issues: inout IssueCollector) -> Condition? {
        guard depth <= Self.maxDepth else {
            issues.add(path, "conditions may be nested at most \(Self.maxDepth) deep")
            return nil
        }
        guard let object = issues.object(json, path, required: true) else { return nil }

        if object["attr"] != nil {
            return parseAttribute(object, at: path, issues: &issues)
        }
        let combinators = ["cohort", "all", "any", "not"].filter { object[$0] != nil }
        guard combinators.count == 1, let form = combinators.first else {
            if combinators.isEmpty {
                let unknown = object.keys.sorted().first.map {
                    " (\"\($0)\" is not an operator\(Suggestion.nearest(to: $0, among: AttributeOperator.names).map { "; did you mean {\"attr\": …, \"\($0)\": …}?" } ?? ""))"
                } ?? ""
                issues.add(path, "a condition needs \"attr\" with an operator, or one of \"cohort\", \"all\", \"any\", \"not\"\(unknown)")
            } else {
                issues.add(path, "a condition has exactly one of \"cohort\", \"all\", \"any\", \"not\", not \(combinators.joined(separator: " and "))")
            }
            return nil
        }
        issues.rejectUnknownFields(object, path, known: [form])
        switch form {
        case "cohort":
            guard let key = issues.key(object["cohort"], path["cohort"], required: true) else { return nil }
            if let knownCohorts, !knownCohorts.contains(key) {
                issues.add(path["cohort"], "cohort \"\(key)\" does not exist\(Suggestion.hint(for: key, among: knownCohorts))")
                return nil
            }
            return .cohort(key)
        case "not":
            return parse(object["not"]!, at: path["not"], depth: depth + 1, issues: &issues).map(Condition.not)
        default:
            guard let items = issues.array(object[form], path[form], required: true) else { return nil }
            var children: [Condition] = []
            var ok = true
            for (i, item) in items.enumerated() {
                if let c = parse(item, at: path[form][i], depth: depth + 1, issues: &issues) { children.append(c) } else { ok = false }
            }
            guard ok else { return nil }
            return form == "all" ? .all(children) : .any(children)
        }
    }

    private func parseAttribute(_ object: [String: JSON], at path: JSONPath, issues: inout IssueCollector) -> Condition? {
        let name = issues.string(object["attr"], path["attr"], required: true)
        if let name, name.isEmpty || name.utf8.count > Self.maxAttributeNameLength {
            issues.add(path["attr"], "must be 1 to \(Self.maxAttributeNameLength) characters")
        }
        let operators = object.keys.filter { $0 != "attr" }.sorted()
        guard operators.count == 1, let opName = operators.first else {
            if operators.isEmpty {
                issues.add(path, "needs an operator: one of \(AttributeOperator.names.joined(separator: ", "))")
            } else {
                let unknown = operators.filter { !AttributeOperator.names.contains($0) }
                for u in unknown { issues.add(path[u], Self.unknownOperator(u)) }
                if unknown.isEmpty { issues.add(path, "has more than one operator: \(operators.joined(separator: ", "))") }
            }
            return nil
        }
        let operand = object[opName]!
        let p = path[opName]
        guard let op = parseOperator(opName, operand, at: p, issues: &issues), let name,
            !name.isEmpty, name.utf8.count <= Self.maxAttributeNameLength
        else { return nil }
        return .attribute(name, op)
    }

    private func parseOperator(_ name: String, _ operand: JSON, at p: JSONPath, issues: inout IssueCollector) -> AttributeOperator? {
        switch name {
        case "eq", "neq":
            guard let s = scalar(operand, p, issues: &issues) else { return nil }
            return name == "eq" ? .eq(s) : .neq(s)
        case "in", "not_in":
            guard let items = issues.array(operand, p, required: true) else { return nil }
            guard items.count <= Self.maxListLength else {
                issues.add(p, "lists hold at most \(Self.maxListLength) values")
                return nil
            }
            var values: [Scalar] = []
            for (i, item) in items.enumerated() {
                if let s = scalar(item, p[i], issues: &issues) { values.append(s) }
            }
            guard values.count == items.count else { return nil }
            return name == "in" ? .in(values) : .notIn(values)
        case "contains", "starts_with", "ends_with":
            guard let s = issues.string(operand, p, required: true) else { return nil }
            switch name {
            case "contains": return .contains(s)
            case "starts_with": return .startsWith(s)
            default: return .endsWith(s)
            }
        case "exists":
            return issues.bool(operand, p, required: true).map(AttributeOperator.exists)
        case "lt", "lte", "gt", "gte":
            guard let n = issues.number(operand, p, required: true) else { return nil }
            return .numeric(NumericComparison(rawValue: name)!, n)
        case "semver_lt", "semver_lte", "semver_gt", "semver_gte", "semver_eq":
            guard let s = issues.string(operand, p, required: true) else { return nil }
            guard let v = SemanticVersion(s) else {
                issues.add(p, "\"\(s.prefix(80))\" is not a semantic version such as 1.9.0")
                return nil
            }
            return .semver(SemverComparison(rawValue: name)!, v)
        case "matches":
            guard let s = issues.string(operand, p, required: true) else { return nil }
            if let problem = RegexPattern.problem(with: s) {
                issues.add(p, problem)
                return nil
            }
            return .matches(s)
        default:
            issues.add(p, Self.unknownOperator(name))
            return nil
        }
    }

    /// "is not a known operator", with the nearest one or the list of them.
    static func unknownOperator(_ name: String) -> String {
        "\"\(name.prefix(80))\" is not a known operator\(Suggestion.hint(for: name, among: AttributeOperator.names, listUpTo: 100))"
    }

    private func scalar(_ json: JSON, _ p: JSONPath, issues: inout IssueCollector) -> Scalar? {
        switch json {
        case .string(let s): return .string(s)
        case .number(let n): return .number(n)
        case .bool(let b): return .bool(b)
        default:
            issues.add(p, "must be a string, number or boolean, not \(json.typeName)")
            return nil
        }
    }
}

/// Write-time checks for `matches` patterns.
public enum RegexPattern {
    /// Why `pattern` cannot be used, or `nil` when it can.
    public static func problem(with pattern: String) -> String? {
        if pattern.count > ConditionParser.maxPatternLength {
            return "regular expressions are at most \(ConditionParser.maxPatternLength) characters, not \(pattern.count)"
        }
        do {
            _ = try BoundedRegex(pattern)
            return nil
        } catch {
            return "is not a valid regular expression: \(error.description)"
        }
    }
}
