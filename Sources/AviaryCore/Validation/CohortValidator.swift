/// Validates cohort JSON: `{"key", "name", "description", "condition"}` (`when` is accepted for
/// `condition`, as rules spell it). References to unknown cohorts and cycles are rejected.
public enum CohortValidator {
    public struct Draft: Sendable, Hashable {
        public var key: String
        public var name: String?
        public var description: String
        public var condition: Condition
    }

    /// - Parameters:
    ///   - key: the key from the URL.
    ///   - references: for every other existing cohort, the cohorts its condition refers to.
    public static func validate(_ json: JSON, key: String, references: [String: Set<String>]) -> Result<Draft, ValidationFailure> {
        var issues = IssueCollector()
        let root = JSONPath.root
        if !Key.isValid(key) {
            issues.add(root["key"], "\"\(key.prefix(80))\" is not a valid key (lower-case letters, digits, '_' and '-', 1 to 63 characters, starting with a letter or digit)")
        }
        guard let body = issues.object(json, root, required: true) else { return .failure(ValidationFailure(issues.issues)) }
        issues.rejectUnknownFields(
            body, root, known: ["key", "name", "description", "condition", "when", "revision", "created_at", "updated_at"])
        if let k = issues.key(body["key"], root["key"]), k != key {
            issues.add(root["key"], "is \"\(k)\" but the URL names \"\(key)\"")
        }
        let name = ExperimentValidator.text(body["name"], root["name"], &issues)
        let description = ExperimentValidator.text(body["description"], root["description"], &issues)
        var condition: Condition?
        var known = Set(references.keys)
        known.remove(key)
        switch (body["condition"], body["when"]) {
        case (let c?, nil), (nil, let c?):
            let field = body["condition"] != nil ? "condition" : "when"
            condition = ConditionParser(knownCohorts: known.union([key])).parse(c, at: root[field], issues: &issues)
            if let condition {
                for cycle in cycles(from: key, through: condition.cohortReferences, references: references) {
                    issues.add(root[field], "cohorts may not refer to themselves: \(cycle.joined(separator: " → "))")
                }
            }
        case (nil, nil):
            issues.add(root["condition"], "is required")
        case (.some, .some):
            issues.add(root, "give \"condition\" or \"when\", not both")
        }
        guard issues.isEmpty, let condition else { return .failure(ValidationFailure(issues.issues)) }
        return .success(Draft(key: key, name: name, description: description ?? "", condition: condition))
    }

    /// Paths that lead from `key` back to itself when `key` refers to `direct`.
    static func cycles(from key: String, through direct: Set<String>, references: [String: Set<String>]) -> [[String]] {
        var found: [[String]] = []
        var visited: Set<String> = []
        func walk(_ node: String, _ path: [String]) {
            if node == key {
                found.append(path + [node])
                return
            }
            guard visited.insert(node).inserted else { return }
            for next in (references[node] ?? []).sorted() { walk(next, path + [node]) }
        }
        for start in direct.sorted() { walk(start, [key]) }
        return found
    }
}
