import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Errors that teach (docs/api.md, "Errors"): what was meant, what is allowed, what to send.
@Suite struct ErrorMessageTests {
    @Test func eachMessageSaysWhatToDo() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            // A misspelt cohort: the nearest one.
            var body = chatRelease(key: "typo").objectValue!
            body["rules"] = [["when": ["cohort": "interal"], "serve": ["variant": "canary"]]]
            let cohort = try await app.request(.post, "/v1/experiments", json: .object(body)).error()
            #expect(cohort.paths == ["rules[0].when.cohort"])
            #expect(cohort.message.contains("cohort \"interal\" does not exist (did you mean \"internal\"?)"), "\(cohort.message)")
            // An unknown operator: the nearest one, or the list.
            body["rules"] = [["when": ["attr": "email", "endswith": "@lobehub.com"], "serve": ["variant": "canary"]]]
            let op = try await app.request(.post, "/v1/experiments", json: .object(body)).error()
            #expect(op.message.contains("did you mean \"ends_with\"?"), "\(op.message)")
            body["rules"] = [["when": ["attr": "email", "resembles": "x"], "serve": ["variant": "canary"]]]
            let list = try await app.request(.post, "/v1/experiments", json: .object(body)).error()
            #expect(list.message.contains("one of: ") && list.message.contains("semver_gte"), "\(list.message)")
            // Fractions for weights: they are percents.
            body["rules"] = [["serve": ["split": [["variant": "stable", "weight": 0.5], ["variant": "canary", "weight": 0.5]]]]]
            let weights = try await app.request(.post, "/v1/experiments", json: .object(body)).error()
            #expect(weights.message.contains("weights sum to 1, not 100 (weights are percents"), "\(weights.message)")
            // 428 names the current revision.
            let missing = try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease()).error()
            #expect(missing.message.contains("the current one is \"2\""), "\(missing.message)")
            // What the user typed, decoded.
            let metric = try await app.request(.get, "/v1/metrics/answer%20rating").error()
            #expect(metric.message == "metric \"answer rating\" does not exist", "\(metric.message)")
        }
    }

    @Test func ofrepParseErrorsShowNoSwift() async throws {
        try await TestApp.run { app in
            let client = try await app.createKey(role: .client)
            let r = try await app.request(.post, "/ofrep/v1/evaluate/flags", key: client.secret, body: "{not json", headers: [.contentType: "application/json"])
            #expect(r.status == .badRequest)
            let text = String(buffer: r.body)
            #expect(text.contains("PARSE_ERROR") && !text.contains("invalid(") && !text.contains("\\\""), "\(text)")
            // JSON sent as text/plain is not read as JSON.
            let plain = try await app.request(.post, "/ofrep/v1/evaluate/flags", key: client.secret, body: "{\"context\": {}}", headers: [.contentType: "text/plain"])
            #expect(plain.status == .badRequest && String(buffer: plain.body).contains("application/json"))
        }
    }
}

/// An event batch reports every problem of an event, the experiment without its variant too.
@Suite struct EventBatchErrorTests {
    @Test func everyProblemOfAnEventIsReported() async throws {
        try await TestApp.run { app in
            let client = try await app.createKey(role: .client)
            let batch: JSON = [["type": "message", "user_id": "u-1", "ts": "yesterday", "experiment": "chat-release"]]
            let r = try await app.request(.post, "/v1/events", key: client.secret, json: batch)
            #expect(r.status == .badRequest)
            let paths = try r.error().paths
            #expect(Set(paths) == ["[0].ts", "[0].variant"], "\(paths)")
        }
    }
}

/// Typos in query strings are 400s naming them (docs/api.md, "Errors"), on the API's routes;
/// assignment ignores what pages and ingresses add.
@Suite struct QueryParameterTests {
    @Test func anUnknownParameterIsNamedAndChangesNothing() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let typo = try await app.request(.get, "/v1/experiments?stauts=running")
            #expect(typo.status == .badRequest)
            let error = try typo.error()
            #expect(error.paths == ["stauts"] && error.message.contains("did you mean \"status\"?"), "\(error.message)")
            #expect(try await app.request(.get, "/v1/experiments?status=running&archived=false").status == .ok)
            #expect(try await app.request(.get, "/v1/experiments/chat-release/report?by=model&form=2026-01-01T00:00:00Z").error().paths == ["form"])
            #expect(try await app.request(.get, "/v1/experiments/chat-release/report.csv?by=model").status == .ok)
            #expect(try await app.request(.get, "/v1/audit?experiment=chat-release&limit=1").status == .ok)
            #expect(try await app.request(.get, "/v1/audit?target_key=chat-release").status == .badRequest)
            let none = try await app.request(.get, "/v1/cohorts/internal?verbose=1").error()
            #expect(none.message.contains("this route takes none"), "\(none.message)")
            // A write with a typo is refused before it runs.
            #expect(try await app.request(.post, "/v1/experiments/chat-release/pause?force=1").status == .badRequest)
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json()["status"] == "running")
            // Assignment takes what pages and ingresses add.
            #expect(try await app.request(.get, "/v1/assign?user=u-1&_=1732950000").status == .ok)
        }
    }
}
