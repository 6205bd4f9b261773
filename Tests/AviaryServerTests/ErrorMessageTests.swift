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
        }
    }
}
