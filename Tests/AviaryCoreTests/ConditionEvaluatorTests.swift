import AviaryCore
import Testing

func evaluate(_ json: JSON, _ attributes: [String: Scalar], cohorts: [String: Condition] = [:]) -> Bool {
    var issues = IssueCollector()
    guard let condition = ConditionParser(knownCohorts: nil).parse(json, at: .root, issues: &issues) else {
        Issue.record("did not parse: \(issues.issues)")
        return false
    }
    let cohortList = cohorts.map { Cohort(key: $0.key, condition: $0.value) }
    let snapshot = ConfigSnapshot(revision: "t", experiments: [], cohorts: cohortList, optedOut: [])
    return snapshot.evaluate(condition, AssignmentContext(userID: "u-1", attributes: attributes))
}

@Suite struct ConditionEvaluatorTests {
    @Test func operators() {
        #expect(evaluate(["attr": "country", "in": ["CN", "SG"]], ["country": "SG"]))
        #expect(!evaluate(["attr": "country", "in": ["CN", "SG"]], ["country": "US"]))
        #expect(evaluate(["attr": "country", "not_in": ["CN"]], ["country": "US"]))
        #expect(evaluate(["attr": "cookie.canary", "eq": "true"], ["cookie.canary": "true"]))
        #expect(evaluate(["attr": "cookie.canary", "eq": true], ["cookie.canary": "true"]), "header text meets a JSON boolean")
        #expect(evaluate(["attr": "plan", "neq": "free"], ["plan": "pro"]))
        #expect(evaluate(["attr": "email", "ends_with": "@lobehub.com"], ["email": "a@lobehub.com"]))
        #expect(evaluate(["attr": "email", "starts_with": "a@"], ["email": "a@lobehub.com"]))
        #expect(evaluate(["attr": "ua", "contains": "Chrome"], ["ua": "Mozilla Chrome/120"]))
        #expect(evaluate(["attr": "age", "gte": 18], ["age": "18"]))
        #expect(evaluate(["attr": "age", "lt": 18.5], ["age": 18]))
        #expect(!evaluate(["attr": "age", "gt": 18], ["age": "eighteen"]))
        #expect(evaluate(["attr": "n", "eq": 42], ["n": "42.0"]))
        #expect(evaluate(["attr": "app_version", "semver_gte": "1.9.0"], ["app_version": "1.10.0"]))
        #expect(!evaluate(["attr": "app_version", "semver_gte": "1.9.0"], ["app_version": "1.9.0-beta.1"]))
        #expect(evaluate(["attr": "app_version", "semver_lt": "2.0.0"], ["app_version": "v1.9"]))
        #expect(evaluate(["attr": "app_version", "semver_eq": "1.9.0"], ["app_version": "1.9.0+build7"]))
        #expect(!evaluate(["attr": "app_version", "semver_gt": "1.0.0"], ["app_version": "garbage"]))
        #expect(evaluate(["attr": "ua", "matches": "Chrome/1[0-9]{2}"], ["ua": "Mozilla Chrome/120"]))
        #expect(evaluate(["attr": "x", "exists": true], ["x": ""]))
        #expect(evaluate(["attr": "user_id", "eq": "u-1"], [:]), "unit ids are attributes")
    }

    @Test func missingAttributeMakesEveryOperatorFalseButExistsAndNotIn() {
        let missing: [String: Scalar] = [:]
        for json: JSON in [
            ["attr": "x", "eq": "a"], ["attr": "x", "neq": "a"], ["attr": "x", "in": ["a"]], ["attr": "x", "contains": ""],
            ["attr": "x", "starts_with": ""], ["attr": "x", "ends_with": ""], ["attr": "x", "lt": 1], ["attr": "x", "gte": 0],
            ["attr": "x", "semver_gte": "0.0.0"], ["attr": "x", "matches": ".*"], ["attr": "x", "exists": true],
        ] {
            #expect(!evaluate(json, missing), "\(json)")
        }
        #expect(evaluate(["attr": "x", "exists": false], missing))
        #expect(evaluate(["attr": "x", "not_in": ["a"]], missing))
    }

    @Test func combinatorsAndCohorts() {
        let internalCohort: Condition = .attribute("email", .endsWith("@lobehub.com"))
        let beta: Condition = .any([.cohort("internal"), .attribute("plan", .eq(.string("beta")))])
        let cohorts = ["internal": internalCohort, "beta": beta]
        #expect(evaluate(["cohort": "beta"], ["email": "x@lobehub.com"], cohorts: cohorts))
        #expect(evaluate(["cohort": "beta"], ["plan": "beta"], cohorts: cohorts))
        #expect(!evaluate(["cohort": "beta"], ["plan": "pro"], cohorts: cohorts))
        #expect(!evaluate(["cohort": "ghost"], ["plan": "pro"], cohorts: cohorts), "an unknown cohort never matches")
        #expect(evaluate(["all": []], [:]))
        #expect(!evaluate(["any": []], [:]))
        #expect(evaluate(["not": ["attr": "x", "exists": true]], [:]))
        #expect(evaluate(["all": [["attr": "a", "eq": 1], ["any": [["attr": "b", "eq": 2], ["attr": "c", "eq": 3]]]]], ["a": 1, "c": 3]))
    }

    @Test func cohortCyclesEvaluateFalseInsteadOfLooping() {
        let cohorts: [String: Condition] = ["a": .cohort("b"), "b": .cohort("a")]
        #expect(!evaluate(["cohort": "a"], [:], cohorts: cohorts))
    }
}

@Suite struct BoundedRegexTests {
    @Test(arguments: [
        ("abc", "xxabcxx", true), ("^abc$", "abc", true), ("^abc$", "abcd", false), ("a.c", "abc", true), ("a.c", "a\nc", false),
        ("colou?r", "color", true), ("colou?r", "colour", true), ("ab*c", "ac", true), ("ab+c", "ac", false), ("(ab)+$", "ababab", true),
        ("^(cat|dog)s?$", "dogs", true), ("^(cat|dog)s?$", "cow", false), ("[a-c]+x", "zzbcax", true), ("^[^0-9]+$", "abc", true),
        ("^[^0-9]+$", "ab1", false), ("\\d{3}-\\d{4}", "call 555-1234", true), ("^\\w+@\\w+\\.com$", "me@lobehub.com", true),
        ("^\\s*$", "  \t", true), ("^a{2,3}$", "aaaa", false), ("^a{2,}$", "aaaa", true), ("^a{2}$", "aa", true), ("x{,2}", "x{,2}", true),
        ("^(?:a|b)*c$", "ababc", true), ("^(?<name>ab)c$", "abc", true), ("\\.", "a.b", true), ("\\.", "ab", false), ("[.]", "a.b", true),
        ("^[\\d\\-]+$", "12-34", true), ("^.*?x$", "aax", true), ("^Mozilla/5\\.0 .*Chrome/(1[0-9]{2})", "Mozilla/5.0 (X11) Chrome/121.0", true),
        ("用户", "的用户-7", true), ("^$", "", true), ("a|", "zzz", true),
    ])
    func matches(_ pattern: String, _ input: String, _ expected: Bool) throws {
        #expect(try BoundedRegex(pattern).matches(input) == expected, "\(pattern) on \(input)")
    }

    @Test(arguments: ["(abc", "abc)", "[abc", "*a", "a**", "\\1", "(?=a)", "(?!a)", "(?<=a)", "(?i)abc", "a{3,2}", "a{2000}", "\\b", "[[:alpha:]]", "\\", "a++", "[z-a]"])
    func rejects(_ pattern: String) {
        #expect(throws: BoundedRegex.SyntaxError.self) { try BoundedRegex(pattern) }
    }

    @Test func catastrophicPatternsStayLinear() throws {
        // (a+)+$ backtracks exponentially on "aaaa…b" in backtracking engines.
        let regex = try BoundedRegex("^(a+)+$")
        let clock = ContinuousClock()
        let input = String(repeating: "a", count: 5000) + "b"
        let elapsed = clock.measure { #expect(!regex.matches(input)) }
        // Not a speed target, a sanity bound: exponential time would never finish.
        #expect(elapsed < .seconds(10))
        #expect(try BoundedRegex("^(a|aa)*$").matches(String(repeating: "a", count: 3000)))
    }

    @Test func overlongInputsNeverMatch() throws {
        #expect(!(try BoundedRegex(".*").matches(String(repeating: "a", count: BoundedRegex.maxInputLength + 1))))
    }

    @Test func hugeExpansionsAreRefused() {
        #expect(throws: BoundedRegex.SyntaxError.self) { try BoundedRegex("(((a{10}){10}){10}){10}") }
    }
}
