import AviaryCore
import Testing

/// A valid experiment in the shape of docs/api.md's experiment document; each test breaks one thing.
func sampleExperiment() -> [String: JSON] {
    [
        "key": "chat-release",
        "name": "LobeChat v1.9.0 canary",
        "unit": "user_id",
        "variants": [["key": "stable", "value": ["version": "v1.8.0"]], ["key": "canary", "value": ["version": "v1.9.0"]]],
        "control": "stable",
        "rules": [
            ["name": "staff", "when": ["cohort": "internal"], "serve": ["variant": "canary"]],
            [
                "name": "east", "when": ["attr": "region", "in": ["cn-east"]],
                "serve": ["split": [["variant": "stable", "weight": 75], ["variant": "canary", "weight": 25]]],
            ],
            ["name": "everyone", "serve": ["split": [["variant": "stable", "weight": 95], ["variant": "canary", "weight": 5]]]],
        ],
        "opt_out": true,
        "layer": nil, "layer_range": nil,
        "status": "draft", "revision": 1,
    ]
}

let context = ExperimentValidationContext(knownCohorts: ["internal", "beta"])

func issues(_ body: [String: JSON], context: ExperimentValidationContext = context, expectedKey: String? = nil) -> [ValidationIssue] {
    switch ExperimentValidator.validate(.object(body), expectedKey: expectedKey, context: context) {
    case .success: []
    case .failure(let f): f.issues
    }
}

func expectIssue(_ found: [ValidationIssue], path: String, containing text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(
        found.contains { $0.path == path && $0.message.contains(text) },
        "expected an issue at \(path) containing \"\(text)\", got \(found)", sourceLocation: sourceLocation)
}

@Suite struct ExperimentValidatorTests {
    @Test func acceptsTheSpecExample() throws {
        let result = ExperimentValidator.validate(.object(sampleExperiment()), context: context)
        let definition = try result.get()
        #expect(definition.key == "chat-release")
        #expect(definition.salt == "chat-release")
        #expect(definition.rules.count == 3)
        #expect(definition.rules[2].serve == .split([SplitEntry(variant: "stable", weight: 9500), SplitEntry(variant: "canary", weight: 500)]))
        #expect(definition.cohortReferences == ["internal"])
    }

    @Test func roundTripsThroughItsJSON() throws {
        let definition = try ExperimentValidator.validate(.object(sampleExperiment()), context: context).get()
        let again = try ExperimentValidator.validate(.object(definition.json), context: context).get()
        #expect(again == definition)
    }

    @Test(arguments: ["", "Chat", "-chat", "chat release", String(repeating: "a", count: 64), "chat.release", "ünï"])
    func rejectsBadKeys(_ key: String) {
        var body = sampleExperiment()
        body["key"] = .string(key)
        expectIssue(issues(body), path: "key", containing: "not a valid key")
    }

    @Test(arguments: ["a", "0", "chat_release-2", String(repeating: "a", count: 63)])
    func acceptsGoodKeys(_ key: String) {
        var body = sampleExperiment()
        body["key"] = .string(key)
        #expect(issues(body).isEmpty)
    }

    @Test func keyIsRequired() {
        var body = sampleExperiment()
        body["key"] = nil
        expectIssue(issues(body), path: "key", containing: "is required")
    }

    @Test func bodyKeyMustMatchURL() {
        expectIssue(issues(sampleExperiment(), expectedKey: "other"), path: "key", containing: "URL names \"other\"")
    }

    @Test func variantsMustBeUnique() {
        var body = sampleExperiment()
        body["variants"] = [["key": "stable"], ["key": "canary"], ["key": "canary"]]
        expectIssue(issues(body), path: "variants[2].key", containing: "listed twice")
    }

    @Test func variantsAreRequiredAndNonEmpty() {
        var body = sampleExperiment()
        body["variants"] = []
        expectIssue(issues(body), path: "variants", containing: "at least one")
        body["variants"] = nil
        expectIssue(issues(body), path: "variants", containing: "is required")
    }

    @Test func controlMustBeAVariant() {
        var body = sampleExperiment()
        body["control"] = "missing"
        expectIssue(issues(body), path: "control", containing: "not one of the variants")
    }

    @Test func splitWeightsMustSumToExactly100() {
        var body = sampleExperiment()
        body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 74.5], ["variant": "canary", "weight": 25]]]]]
        expectIssue(issues(body), path: "rules[0].serve.split", containing: "weights sum to 99.5, not 100")
    }

    @Test func splitWeightsAllowTwoDecimals() {
        var body = sampleExperiment()
        body["variants"] = [["key": "a"], ["key": "b"], ["key": "c"]]
        body["control"] = "a"
        body["rules"] = [["serve": ["split": [["variant": "a", "weight": 33.34], ["variant": "b", "weight": 33.33], ["variant": "c", "weight": 33.33]]]]]
        #expect(issues(body).isEmpty)
    }

    @Test func splitWeightsRejectThreeDecimals() {
        var body = sampleExperiment()
        body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 50.005], ["variant": "canary", "weight": 49.995]]]]]
        expectIssue(issues(body), path: "rules[0].serve.split[0].weight", containing: "two decimals")
    }

    @Test func splitWeightsMustBeWithinRange() {
        var body = sampleExperiment()
        body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 120], ["variant": "canary", "weight": -20]]]]]
        let found = issues(body)
        expectIssue(found, path: "rules[0].serve.split[0].weight", containing: "between 0 and 100")
        expectIssue(found, path: "rules[0].serve.split[1].weight", containing: "between 0 and 100")
    }

    @Test func ruleVariantMustExist() {
        var body = sampleExperiment()
        body["rules"] = [
            ["serve": ["variant": "ghost"]],
            ["serve": ["split": [["variant": "stable", "weight": 50], ["variant": "phantom", "weight": 50]]]],
        ]
        let found = issues(body)
        expectIssue(found, path: "rules[0].serve.variant", containing: "\"ghost\", which is not one of the variants")
        expectIssue(found, path: "rules[1].serve.split[1].variant", containing: "\"phantom\"")
    }

    @Test func serveNeedsExactlyOneForm() {
        var body = sampleExperiment()
        body["rules"] = [["serve": [:]], ["serve": ["variant": "stable", "split": []]], ["name": "x"]]
        let found = issues(body)
        expectIssue(found, path: "rules[0].serve", containing: "needs \"variant\" or \"split\"")
        expectIssue(found, path: "rules[1].serve", containing: "both")
        expectIssue(found, path: "rules[2].serve", containing: "is required")
    }

    @Test func splitVariantsAppearOnce() {
        var body = sampleExperiment()
        body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 50], ["variant": "stable", "weight": 50]]]]]
        expectIssue(issues(body), path: "rules[0].serve.split[1].variant", containing: "appears twice")
    }

    @Test func ruleNamesAreUnique() {
        var body = sampleExperiment()
        body["rules"] = [["name": "a", "serve": ["variant": "stable"]], ["name": "a", "serve": ["variant": "canary"]]]
        expectIssue(issues(body), path: "rules[1].name", containing: "used twice")
    }

    @Test func trafficIsAPercentage() {
        var body = sampleExperiment()
        body["rules"] = [["serve": ["variant": "stable"], "traffic": 101], ["serve": ["variant": "stable"], "traffic": "all"]]
        let found = issues(body)
        expectIssue(found, path: "rules[0].traffic", containing: "between 0 and 100")
        expectIssue(found, path: "rules[1].traffic", containing: "must be a number")
    }

    @Test func unknownFieldsAreReported() {
        var body = sampleExperiment()
        body["varaints"] = []
        body["rules"] = [["serve": ["variant": "stable"], "wen": [:]]]
        let found = issues(body)
        expectIssue(found, path: "varaints", containing: "not a known field")
        expectIssue(found, path: "rules[0].wen", containing: "not a known field")
    }

    @Test func readOnlyFieldsAreIgnored() {
        var body = sampleExperiment()
        body["status"] = "running"
        body["revision"] = 7
        body["created_at"] = "2026-01-01T00:00:00Z"
        #expect(issues(body).isEmpty)
    }

    @Test func unitsAreKnown() {
        var body = sampleExperiment()
        body["unit"] = "device_id"
        body["fallback_unit"] = "user_id"
        let found = issues(body)
        expectIssue(found, path: "unit", containing: "\"user_id\" or \"anonymous_id\"")
        body["unit"] = "user_id"
        expectIssue(issues(body), path: "fallback_unit", containing: "must differ")
    }

    @Test func layerNeedsARangeAndRangesDoNotOverlap() {
        var body = sampleExperiment()
        body["layer"] = "homepage"
        expectIssue(issues(body), path: "layer_range", containing: "required when layer is set")

        body["layer_range"] = [40, 60]
        let busy = ExperimentValidationContext(
            knownCohorts: ["internal"],
            layerOccupants: [.init(experiment: "other", layer: "homepage", range: LayerRange(start: 0, end: 5000))])
        expectIssue(issues(body, context: busy), path: "layer_range", containing: "overlaps [0, 50) of experiment \"other\"")

        body["layer_range"] = [50, 100]
        #expect(issues(body, context: busy).isEmpty)

        body["layer_range"] = [60, 40]
        expectIssue(issues(body, context: busy), path: "layer_range", containing: "start must be below end")
    }

    @Test func anExperimentDoesNotOverlapItself() {
        var body = sampleExperiment()
        body["layer"] = "homepage"
        body["layer_range"] = [0, 50]
        let mine = ExperimentValidationContext(
            knownCohorts: ["internal"],
            layerOccupants: [.init(experiment: "chat-release", layer: "homepage", range: LayerRange(start: 0, end: 5000))])
        #expect(issues(body, context: mine).isEmpty)
    }

    @Test func reportsEveryProblemAtOnce() {
        var body = sampleExperiment()
        body["key"] = "Bad Key"
        body["control"] = "nobody"
        body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 10]]]], ["when": ["cohort": "ghosts"], "serve": ["variant": "canary"]]]
        let found = issues(body)
        expectIssue(found, path: "key", containing: "not a valid key")
        expectIssue(found, path: "control", containing: "not one of the variants")
        expectIssue(found, path: "rules[0].serve.split", containing: "weights sum to 10")
        expectIssue(found, path: "rules[1].when.cohort", containing: "cohort \"ghosts\" does not exist")
        #expect(found.count == 4)
    }

    @Test func bodyMustBeAnObject() {
        let result = ExperimentValidator.validate(.array([]), context: context)
        guard case .failure(let f) = result else {
            Issue.record("an array was accepted")
            return
        }
        #expect(f.issues == [ValidationIssue(path: "", message: "must be an object, not array")])
    }
}
