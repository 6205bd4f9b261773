import AviaryCore
import Testing

func conditionIssues(_ json: JSON, cohorts: Set<String>? = ["internal"]) -> [ValidationIssue] {
    var collector = IssueCollector()
    _ = ConditionParser(knownCohorts: cohorts).parse(json, at: JSONPath.root["when"], issues: &collector)
    return collector.issues
}

func parsed(_ json: JSON) -> Condition? {
    var collector = IssueCollector()
    return ConditionParser(knownCohorts: nil).parse(json, at: .root, issues: &collector)
}

@Suite struct ConditionParserTests {
    @Test(arguments: [
        ["attr": "country", "in": ["CN", "SG"]],
        ["attr": "cookie.canary", "eq": "true"],
        ["attr": "email", "ends_with": "@lobehub.com"],
        ["attr": "app_version", "semver_gte": "1.9.0"],
        ["cohort": "internal"],
        ["all": [["attr": "a", "exists": true], ["not": ["attr": "b", "lt": 3]]]],
        ["any": []],
        ["attr": "ua", "matches": "^Mozilla/5\\.0 .*Chrome/(1[0-9]{2})"],
        ["attr": "n", "not_in": [1, 2, true, "x"]],
    ] as [JSON])
    func acceptsTheSpecForms(_ json: JSON) {
        #expect(conditionIssues(json).isEmpty)
        #expect(parsed(json)?.json == json)
    }

    @Test func unknownOperatorIsReportedAtItsPath() {
        expectIssue(conditionIssues(["attr": "country", "like": "C%"]), path: "when.like", containing: "not a known operator")
    }

    @Test func missingOperator() {
        expectIssue(conditionIssues(["attr": "country"]), path: "when", containing: "needs an operator")
    }

    @Test func twoOperators() {
        expectIssue(conditionIssues(["attr": "country", "eq": "CN", "neq": "SG"]), path: "when", containing: "more than one operator")
    }

    @Test func unknownConditionForm() {
        expectIssue(conditionIssues(["oneOf": []]), path: "when", containing: "\"oneOf\" is not an operator")
    }

    @Test func unknownCohort() {
        expectIssue(conditionIssues(["any": [["cohort": "internal"], ["cohort": "ghosts"]]]), path: "when.any[1].cohort", containing: "does not exist")
    }

    @Test func depthIsAtMostEight() {
        var deep: JSON = ["attr": "a", "exists": true]
        for _ in 0..<7 { deep = ["not": deep] }
        #expect(conditionIssues(deep).isEmpty, "depth 8 is allowed")
        deep = ["not": deep]
        expectIssue(conditionIssues(deep), path: "when.not.not.not.not.not.not.not.not", containing: "at most 8 deep")
    }

    @Test func regexIsBoundedAndMustCompile() {
        expectIssue(conditionIssues(["attr": "ua", "matches": "(unclosed"]), path: "when.matches", containing: "not a valid regular expression")
        let long = String(repeating: "a", count: 257)
        expectIssue(conditionIssues(["attr": "ua", "matches": .string(long)]), path: "when.matches", containing: "at most 256 characters")
        #expect(conditionIssues(["attr": "ua", "matches": .string(String(repeating: "a", count: 256))]).isEmpty)
    }

    @Test func operandTypes() {
        expectIssue(conditionIssues(["attr": "n", "gt": "3"]), path: "when.gt", containing: "must be a number")
        expectIssue(conditionIssues(["attr": "n", "in": "CN"]), path: "when.in", containing: "must be an array")
        expectIssue(conditionIssues(["attr": "n", "in": [["x": 1]]]), path: "when.in[0]", containing: "string, number or boolean")
        expectIssue(conditionIssues(["attr": "n", "exists": "yes"]), path: "when.exists", containing: "must be a boolean")
        expectIssue(conditionIssues(["attr": "v", "semver_gt": "one.two"]), path: "when.semver_gt", containing: "not a semantic version")
        expectIssue(conditionIssues(["attr": "", "eq": "x"]), path: "when.attr", containing: "1 to 128")
        expectIssue(conditionIssues(["all": ["attr": "a", "eq": 1]]), path: "when.all", containing: "must be an array")
    }

    @Test func collectsCohortReferences() {
        let c = parsed(["any": [["cohort": "a"], ["not": ["cohort": "b"]], ["attr": "x", "eq": 1]]])
        #expect(c?.cohortReferences == ["a", "b"])
        #expect(c?.depth == 3)
    }
}

@Suite struct CohortValidatorTests {
    @Test func acceptsACondition() throws {
        let draft = try CohortValidator.validate(
            ["name": "Staff", "condition": ["attr": "email", "ends_with": "@lobehub.com"]], key: "internal", references: [:]
        ).get()
        #expect(draft.name == "Staff")
    }

    @Test func acceptsWhenAsAnAlias() throws {
        _ = try CohortValidator.validate(["when": ["attr": "email", "exists": true]], key: "internal", references: [:]).get()
    }

    @Test func rejectsSelfReference() {
        let result = CohortValidator.validate(["condition": ["cohort": "a"]], key: "a", references: [:])
        guard case .failure(let f) = result else {
            Issue.record("accepted")
            return
        }
        expectIssue(f.issues, path: "condition", containing: "a → a")
    }

    @Test func rejectsCycles() {
        // b refers to c, c refers to a; a referring to b closes the loop.
        let result = CohortValidator.validate(["condition": ["cohort": "b"]], key: "a", references: ["b": ["c"], "c": ["a"], "a": []])
        guard case .failure(let f) = result else {
            Issue.record("accepted")
            return
        }
        expectIssue(f.issues, path: "condition", containing: "a → b → c → a")
    }

    @Test func acceptsChains() throws {
        _ = try CohortValidator.validate(["condition": ["cohort": "b"]], key: "a", references: ["b": ["c"], "c": []]).get()
    }

    @Test func rejectsUnknownCohortAndMissingCondition() {
        guard case .failure(let f) = CohortValidator.validate(["condition": ["cohort": "nope"]], key: "a", references: [:]) else {
            Issue.record("accepted")
            return
        }
        expectIssue(f.issues, path: "condition.cohort", containing: "does not exist")
        guard case .failure(let g) = CohortValidator.validate(["name": "x"], key: "a", references: [:]) else {
            Issue.record("accepted")
            return
        }
        expectIssue(g.issues, path: "condition", containing: "is required")
    }
}
