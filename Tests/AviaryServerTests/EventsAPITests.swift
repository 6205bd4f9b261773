import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

func event(_ i: Int, type: String = "message_sent", user: String = "u-1", ts: String = "2026-11-27T05:00:00Z") -> JSON {
    [
        "id": .string(String(format: "00000000-0000-4000-8000-%012d", i)), "type": .string(type), "user_id": .string(user),
        "ts": .string(ts), "value": .number(Double(i)), "model": "qwen-max", "app_version": "1.9.0", "props": ["latency_ms": 820],
    ]
}

@Suite struct EventsAPITests {
    @Test func acceptsABatchAndStoresItOnce() async throws {
        try await TestApp.run { app in
            let client = try await app.createKey(role: .client)
            let batch: JSON = .array((0..<500).map { event($0) })
            let first = try await app.request(.post, "/v1/events", key: client.secret, json: batch)
            #expect(first.status == .ok)
            #expect(try first.json() == ["accepted": 500, "duplicates": 0])
            #expect(try await app.database.events.count() == 500)

            let again = try await app.request(.post, "/v1/events", key: client.secret, json: batch)
            #expect(try again.json() == ["accepted": 0, "duplicates": 500])
            let mixed: JSON = .array((498..<503).map { event($0) })
            #expect(try await app.request(.post, "/v1/events", key: client.secret, json: mixed).json() == ["accepted": 3, "duplicates": 2])
            #expect(try await app.database.events.count() == 503)
        }
    }

    @Test func anInvalidEventRejectsTheWholeBatch() async throws {
        try await TestApp.run { app in
            var items = (0..<10).map { event($0) }
            items[3] = ["type": "message_sent", "ts": "yesterday", "user_id": "u-1"]
            items[7] = ["type": "Bad Type", "ts": "2026-11-27T05:00:00Z", "value": "high"]
            let r = try await app.request(.post, "/v1/events", json: .array(items))
            #expect(r.status == .badRequest)
            let error = try r.error()
            #expect(error.code == "invalid_events")
            #expect(Set(error.paths) == ["[3].ts", "[7].type", "[7]", "[7].value"])
            let indexes = try r.json()["error"]?["details"]?.arrayValue?.compactMap { $0["index"]?.numberValue } ?? []
            #expect(Set(indexes) == [3, 7])
            #expect(try await app.database.events.count() == 0)
        }
    }

    @Test func acceptsNDJSON() async throws {
        try await TestApp.run { app in
            let body = (0..<3).map { event($0).canonicalString() }.joined(separator: "\n") + "\n"
            let r = try await app.request(.post, "/v1/events", body: body, headers: [.contentType: "application/x-ndjson"])
            #expect(try r.json() == ["accepted": 3, "duplicates": 0])
            let broken = try await app.request(.post, "/v1/events", body: "{\"type\": 1}\n{oops\n", headers: [.contentType: "application/x-ndjson"])
            #expect(broken.status == .badRequest)
            #expect(try broken.error().paths == ["[1]"])
        }
    }

    @Test func boundsAndAuthentication() async throws {
        try await TestApp.run { app in
            let tooMany = try await app.request(.post, "/v1/events", json: .array((0..<1001).map { event($0) }))
            #expect(tooMany.status == .badRequest)
            #expect(try await app.request(.post, "/v1/events", json: []).status == .badRequest)
            #expect(try await app.request(.post, "/v1/events", key: nil, json: [event(1)]).status == .unauthorized)
            #expect(try await app.request(.post, "/v1/events", body: "x", headers: [.contentType: "text/plain"]).status == .unsupportedMediaType)
            let future = try await app.request(.post, "/v1/events", json: [event(1, ts: "2099-01-01T00:00:00Z")])
            #expect(try future.error().paths == ["[0].ts"])
            let noUnit = try await app.request(.post, "/v1/events", json: [["type": "x", "ts": "2026-11-27T05:00:00Z"]])
            #expect(try noUnit.error().paths == ["[0]"])
            #expect(try await app.database.events.count() == 0)
        }
    }
}
