import AviaryCore
@testable import AviaryPostgres
import Foundation
import HTTPTypes
import PostgresNIO
import Testing

/// Stored rows this version cannot read, through the API (docs/operations.md, "Unreadable
/// stored objects"): shown on `/readyz`, refused for every write but a repair, repaired by a
/// `PUT` of a whole document or a `DELETE`.
@Suite struct UnreadableObjectAPITests {
    func unreadable(_ app: TestApp) async throws -> [String] {
        let ready = try await app.request(.get, "/readyz", key: nil)
        #expect(ready.status == .ok)
        return try ready.json()["unreadable"]?.arrayValue?.map { "\($0["kind"]!.stringValue!) \($0["key"]!.stringValue!)" } ?? []
    }

    func sql(_ app: TestApp, _ query: PostgresQuery) async throws {
        try await app.database.client.query(query, logger: app.database.logger)
        // Direct SQL sends no notification; a write elsewhere makes every replica reload.
        #expect(try await app.request(.put, "/v1/cohorts/poke", json: ["condition": ["attr": "x", "eq": .string(UUID().uuidString)]]).status.code < 300)
    }

    @Test func aBrokenCohortMetricAndKeyAreShownRefusedAndRepaired() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.put, "/v1/cohorts/staff", json: ["condition": ["attr": "email", "ends_with": "@x.com"]]).status == .created)
            #expect(try await app.request(.put, "/v1/metrics/rating", json: ["kind": "mean", "event": "rating"]).status == .created)
            let key = try await app.createKey(role: .client)
            try await sql(app, "UPDATE cohorts SET condition = '{\"attr\": \"email\", \"sounds_like\": \"x\"}' WHERE key = 'staff'")
            try await sql(app, "UPDATE metrics SET definition = '{\"kind\": \"median\"}' WHERE key = 'rating'")
            // A role this version does not know, as a later version's row would have (the
            // schema's check is dropped for it).
            try await app.database.client.query("ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check", logger: app.database.logger)
            try await sql(app, "UPDATE api_keys SET role = 'owner' WHERE id = \(key.id)")
            _ = try await app.waitUntil { try await unreadable(app) == ["cohort staff", "key \(key.id)", "metric rating"] }
            #expect(try await app.request(.get, "/v1/assign", key: key.secret).status == .unauthorized)

            let get = try await app.request(.get, "/v1/cohorts/staff")
            #expect(get.status == .conflict)
            #expect(try get.error().code == "stored_object_unreadable" && get.error().message.contains("sounds_like"))
            #expect(try await app.request(.patch, "/v1/metrics/rating", json: ["name": "x"]).status == .conflict)
            #expect(try await app.request(.get, "/v1/metrics").json()["metrics"]?.arrayValue?.isEmpty == true)

            let repaired = try await app.request(.put, "/v1/cohorts/staff", json: ["condition": ["attr": "email", "ends_with": "@y.com"]])
            #expect(repaired.status == .ok)
            #expect(try repaired.json()["revision"] == 2)
            #expect(try await app.request(.delete, "/v1/metrics/rating").status == .noContent)
            #expect(try await app.request(.delete, "/v1/keys/\(key.id)").status == .noContent)
            _ = try await app.waitUntil { try await unreadable(app).isEmpty }
            #expect(try await app.request(.get, "/v1/cohorts/staff").status == .ok)
        }
    }

    @Test func aBrokenExperimentIsRepairedByAWholePut() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            try await sql(app, "UPDATE experiments SET definition = jsonb_set(definition, '{variants}', '[]') WHERE key = 'chat-release'")
            _ = try await app.waitUntil { try await unreadable(app) == ["experiment chat-release"] }
            // The running server keeps its last good version.
            let served = try await app.request(.get, "/v1/assign/chat-release", headers: [.init("X-Aviary-User")!: "u-1"])
            #expect(served.status == .ok)
            #expect(try await app.request(.get, "/v1/experiments/chat-release").status == .conflict)
            #expect(try await app.request(.post, "/v1/experiments/chat-release/pause").status == .conflict)
            #expect(try await app.request(.get, "/v1/experiments/chat-release/revisions").status == .ok)
            #expect(try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "\"1\""]).status == .preconditionFailed)
            let put = try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "\"2\""])
            #expect(put.status == .ok)
            #expect(try put.json()["status"] == "running" && put.json()["revision"] == 3)
            _ = try await app.waitUntil { try await unreadable(app).isEmpty }
        }
    }
}
