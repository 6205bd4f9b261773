import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct MalformedRequestTests {
    @Test func malformedJSONIs400() async throws {
        try await TestApp.run { app in
            let r = try await app.request(.post, "/v1/experiments", body: "{\"key\": ", headers: [.contentType: "application/json"])
            #expect(r.status == .badRequest)
            #expect(try r.error().code == "invalid_json")
        }
    }

    @Test func wrongContentTypeIs415() async throws {
        try await TestApp.run { app in
            let r = try await app.request(.post, "/v1/experiments", body: "{}", headers: [.contentType: "text/plain"])
            #expect(r.status == .unsupportedMediaType)
            #expect(try r.error().code == "unsupported_media_type")
            let none = try await app.request(.put, "/v1/cohorts/x", body: "{}")
            #expect(none.status == .unsupportedMediaType)
            let charset = try await app.request(.put, "/v1/cohorts/x", body: "{\"condition\": {\"attr\": \"a\", \"exists\": true}}", headers: [.contentType: "application/json; charset=utf-8"])
            #expect(charset.status == .created)
        }
    }

    @Test func bodiesOver1MiBAre413() async throws {
        try await TestApp.run { app in
            let big = "{\"key\": \"" + String(repeating: "a", count: 1 << 20) + "\"}"
            let r = try await app.request(.post, "/v1/experiments", body: big, headers: [.contentType: "application/json"])
            #expect(r.status == .contentTooLarge)
            #expect(try r.error().code == "payload_too_large")
        }
    }

    @Test func unknownRoutesAre404InTheErrorShape() async throws {
        try await TestApp.run { app in
            for path in ["/nope", "/v1/nothing", "/v1/experiments/x/y/z"] {
                let r = try await app.request(.get, path)
                #expect(r.status == .notFound, "\(path)")
                #expect(try r.error().code == "not_found")
            }
            let wrongMethod = try await app.request(.patch, "/v1/experiments")
            #expect(wrongMethod.status.code == 404 || wrongMethod.status.code == 405)
            #expect(try wrongMethod.error().code.isEmpty == false)
        }
    }

    /// A spread of hostile or broken bodies on every writing route: never a 500.
    @Test func noMalformedRequestCausesA500() async throws {
        let bodies: [String] = [
            "", "null", "[]", "42", "\"text\"", "{", "{\"key\": null}", "{\"key\": 5, \"variants\": {}, \"rules\": \"all\"}",
            "{\"variants\": [null, 1, {\"key\": []}], \"rules\": [null, {\"serve\": {\"split\": [null]}}]}",
            "{\"rules\": [{\"when\": {\"all\": [{\"not\": null}]}, \"serve\": {\"variant\": 1}}]}",
            String(repeating: "[", count: 5000), String(repeating: "{\"a\":", count: 3000),
            "{\"condition\": {\"attr\": \"x\", \"matches\": \"((((\"}}", "{\"condition\": {\"cohort\": \"\\u0000\"}}",
            "{\"role\": [\"admin\"]}", "{\"winner\": {}}", "\u{FEFF}{}", "{\"key\": \"\\ud800\"}",
            "{\"rules\": [{\"serve\": {\"split\": [{\"variant\": \"a\", \"weight\": 1e400}]}}]}",
        ]
        let routes: [(HTTPRequest.Method, String)] = [
            (.post, "/v1/experiments"), (.put, "/v1/experiments/x"), (.put, "/v1/cohorts/x"), (.post, "/v1/keys"),
            (.post, "/v1/experiments/x/stop"),
        ]
        try await TestApp.run { app in
            try await app.request(.post, "/v1/experiments", json: .object(chatRelease(key: "x").objectValue!.merging(["rules": []]) { $1 }))
            for (method, path) in routes {
                for body in bodies {
                    let r = try await app.request(method, path, body: body, headers: [.contentType: "application/json", .ifMatch: "\"1\""])
                    #expect(r.status.code < 500, "\(method) \(path) with \(body.prefix(60)) → \(r.status)")
                    #expect(r.status.code >= 400, "\(method) \(path) with \(body.prefix(60)) → \(r.status)")
                    #expect((try? r.error()) != nil, "error body shape for \(method) \(path) \(body.prefix(40))")
                }
            }
            for path in ["/v1/experiments?status=%ZZ", "/v1/audit?limit=99999999999999999999", "/v1/experiments/%00", "/v1/keys/" + String(repeating: "k", count: 500)] {
                let r = try await app.request(.get, path)
                #expect(r.status.code < 500, "\(path) → \(r.status)")
            }
        }
    }
}
