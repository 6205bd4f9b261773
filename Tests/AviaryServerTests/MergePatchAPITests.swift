import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `PATCH` with a JSON merge patch (docs/api.md, "Changing one field"): experiments, cohorts and
/// metrics; fields named change, others stay, arrays are replaced, `null` removes, invalid
/// results are 400 with paths and change nothing, If-Match as for `PUT`.
@Suite struct MergePatchAPITests {
    static let mergePatch: HTTPFields = [.contentType: "application/merge-patch+json"]

    static func patch(_ app: TestApp, _ path: String, _ json: JSON, ifMatch: String?, contentType: String = "application/merge-patch+json") async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType]
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await app.request(.patch, path, json: json, headers: headers)
    }

    @Test func anExperimentChangesOnlyWhatThePatchNames() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let before = try await app.request(.get, "/v1/experiments/chat-release").json()
            let revision = try #require(before["revision"]?.numberValue).formatted()

            // Fields named change, others stay; null removes; an array is replaced whole.
            let patched = try await Self.patch(app, "/v1/experiments/chat-release", [
                "name": "Canary of v1.9.0", "description": nil,
                "metrics": ["primary": ["answer_rating"], "secondary": [], "guardrails": ["error_rate"]],
            ], ifMatch: "\"\(revision)\"")
            #expect(patched.status == .ok)
            let after = try patched.json()
            #expect(after["name"] == "Canary of v1.9.0")
            // Removed: back to what a definition without it has.
            #expect([nil, .null, ""].contains(after["description"]), "\(String(describing: after["description"]))")
            #expect(after["metrics"] == ["primary": ["answer_rating"], "secondary": [], "guardrails": ["error_rate"]])
            for field in ["variants", "rules", "control", "unit", "salt", "status", "opt_out"] {
                #expect(after[field] == before[field], "\(field) kept")
            }
            #expect(after["revision"]?.numberValue == (before["revision"]?.numberValue ?? 0) + 1)
            #expect(patched.headers[.eTag] == "\"\(Int(after["revision"]?.numberValue ?? 0))\"")
            // Assignment follows (a running experiment, its rules untouched).
            #expect(try await app.request(.get, "/v1/assign/chat-release?user=u-1").status == .ok)

            // Audited as a PUT is.
            let audit = try await app.request(.get, "/v1/audit?experiment=chat-release").json()
            #expect(audit["entries"]?.arrayValue?.first?["action"] == "experiment.update")
        }
    }

    @Test func anInvalidResultIsRefusedWithPathsAndChangesNothing() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let before = try await app.request(.get, "/v1/experiments/chat-release").json()
            let etag = "\"\(Int(before["revision"]?.numberValue ?? 0))\""
            let bad = try await Self.patch(app, "/v1/experiments/chat-release", [
                "control": "nope", "rules": [["name": "everyone", "serve": ["split": [["variant": "stable", "weight": 90]]]]],
            ], ifMatch: etag)
            #expect(bad.status == .badRequest)
            let paths = try bad.error().paths
            #expect(Set(paths).isSuperset(of: ["control", "rules[0].serve.split"]), "\(paths)")
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json() == before)

            // If-Match: required (428 names PATCH), checked (412).
            let missing = try await Self.patch(app, "/v1/experiments/chat-release", ["name": "x"], ifMatch: nil)
            #expect(missing.status == .preconditionRequired)
            #expect(try missing.error().message.contains("PATCH needs If-Match"))
            #expect(try await Self.patch(app, "/v1/experiments/chat-release", ["name": "x"], ifMatch: "\"99\"").status == .preconditionFailed)
            // A JSON Patch (RFC 6902) is another format: 415, not a silent replacement.
            let jsonPatch = try await Self.patch(app, "/v1/experiments/chat-release", [["op": "replace", "path": "/name", "value": "x"]],
                ifMatch: etag, contentType: "application/json-patch+json")
            #expect(jsonPatch.status == .unsupportedMediaType)
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json() == before)
            #expect(try await Self.patch(app, "/v1/experiments/nothing", ["name": "x"], ifMatch: "\"1\"").status == .notFound)
        }
    }

    @Test func cohortsAndMetricsTakeMergePatchesToo() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.put, "/v1/cohorts/internal", json: ["name": "Staff", "condition": ["attr": "cookie.internal", "eq": "1"]]).status == .created)
            let renamed = try await Self.patch(app, "/v1/cohorts/internal", ["name": nil, "description": "people of the company"], ifMatch: nil)
            #expect(renamed.status == .ok)
            let cohort = try renamed.json()
            #expect(cohort["condition"] == ["attr": "cookie.internal", "eq": "1"])
            // The name removed: what a cohort defined without one has.
            #expect(try await app.request(.put, "/v1/cohorts/nameless", json: ["condition": ["attr": "x", "eq": "1"]]).status == .created)
            let nameless = try await app.request(.get, "/v1/cohorts/nameless").json()
            #expect(cohort["description"] == "people of the company" && cohort["name"] != "Staff", "\(cohort)")
            #expect(cohort["name"] == nameless["name"] || (nameless["name"] == "nameless" && cohort["name"] == "internal"), "\(cohort)")
            #expect(try await Self.patch(app, "/v1/cohorts/internal", ["condition": ["attr": "x", "endswith": "y"]], ifMatch: nil).status == .badRequest)
            #expect(try await Self.patch(app, "/v1/cohorts/internal", ["name": "x"], ifMatch: "\"1\"").status == .preconditionFailed)
            #expect(try await Self.patch(app, "/v1/cohorts/nobody", ["name": "x"], ifMatch: nil).status == .notFound)

            #expect(try await app.request(.put, "/v1/metrics/latency", json: ["kind": "quantile", "event": "response", "q": 0.99]).status == .created)
            let median = try await Self.patch(app, "/v1/metrics/latency", ["q": 0.5, "name": "Median latency"], ifMatch: "\"1\"")
            #expect(median.status == .ok)
            #expect(try median.json()["q"] == 0.5 && (try median.json()["event"]) == "response" && (try median.json()["revision"]) == 2)
        }
    }
}
