import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AviaryPostgres

/// Every admin route of docs/api.md.
let adminRoutes: [(HTTPRequest.Method, String)] = [
    (.post, "/v1/experiments"), (.get, "/v1/experiments"), (.get, "/v1/experiments/x"), (.put, "/v1/experiments/x"),
    (.delete, "/v1/experiments/x"), (.get, "/v1/experiments/x/revisions"), (.post, "/v1/experiments/x/start"),
    (.post, "/v1/experiments/x/pause"), (.post, "/v1/experiments/x/resume"), (.post, "/v1/experiments/x/stop"),
    (.post, "/v1/experiments/x/rollback"), (.get, "/v1/cohorts"), (.get, "/v1/cohorts/x"), (.put, "/v1/cohorts/x"),
    (.delete, "/v1/cohorts/x"), (.get, "/v1/metrics"), (.get, "/v1/metrics/x"), (.put, "/v1/metrics/x"), (.delete, "/v1/metrics/x"),
    (.get, "/v1/audit"), (.post, "/v1/keys"), (.get, "/v1/keys"), (.delete, "/v1/keys/x"),
]

@Suite struct AuthTests {
    @Test func everyAdminRouteNeedsAnAdminKey() async throws {
        try await TestApp.run { app in
            let client = try await app.createKey(role: .client)
            for (method, path) in adminRoutes {
                let none = try await app.request(method, path, key: nil, json: [:])
                #expect(none.status == .unauthorized, "\(method) \(path) without a key")
                #expect(try none.error().code == "unauthorized")
                #expect(none.headers[.wwwAuthenticate] == "Bearer")

                let wrong = try await app.request(method, path, key: "avk_not-a-real-key", json: [:])
                #expect(wrong.status == .unauthorized, "\(method) \(path) with an unknown key")

                let forbidden = try await app.request(method, path, key: client.secret, json: [:])
                #expect(forbidden.status == .forbidden, "\(method) \(path) with a client key")
                #expect(try forbidden.error().code == "forbidden")

                let viaHeader = try await app.request(method, path, key: nil, json: [:], headers: [.init("X-API-Key")!: client.secret])
                #expect(viaHeader.status == .forbidden, "\(method) \(path) with a client key in X-API-Key")
            }
        }
    }

    @Test func acceptsBearerAndXAPIKey() async throws {
        try await TestApp.run { (app: TestApp) async throws in
            #expect(try await app.request(.get, "/v1/experiments").status == .ok)
            #expect(try await app.request(.get, "/v1/experiments", key: nil, headers: [.init("X-API-Key")!: adminToken]).status == .ok)
            #expect(try await app.request(.get, "/v1/experiments", key: nil, headers: [.authorization: "bearer \(adminToken)"]).status == .ok)
            #expect(try await app.request(.get, "/v1/experiments", key: nil, headers: [.authorization: "Basic \(adminToken)"]).status == .unauthorized)
            #expect(try await app.request(.get, "/v1/experiments", key: adminToken + "x").status == .unauthorized)
        }
    }

    @Test func keysAreShownOnceStoredHashedAndRevocable() async throws {
        try await TestApp.run { app in
            let created = try await app.request(.post, "/v1/keys", json: ["role": "admin", "name": "ci"])
            #expect(created.status == .created)
            #expect(created.headers[.cacheControl] == "no-store")
            let json = try created.json()
            let secret = try #require(json["key"]?.stringValue)
            let id = try #require(json["id"]?.stringValue)
            #expect(json["role"] == "admin")
            #expect(json["name"] == "ci")

            #expect(try await app.request(.get, "/v1/experiments", key: secret).status == .ok)

            let list = try await app.request(.get, "/v1/keys")
            let listed = String(buffer: list.body)
            #expect(!listed.contains(secret), "the list must not show secrets")
            let keys = try list.json()["keys"]?.arrayValue ?? []
            #expect(keys.contains { $0["id"]?.stringValue == id && $0["key"] == nil })

            // Only the digest is stored.
            let rows = try await app.database.client.query("SELECT encode(key_hash, 'hex'), key_prefix FROM api_keys WHERE id = \(id)")
            for try await (hash, prefix) in rows.decode((String, String).self) {
                #expect(hash == APIKeySecret.hash(secret).map { String(format: "%02x", $0) }.joined())
                #expect(secret.hasPrefix(prefix) && prefix.count < 12)
            }

            #expect(try await app.request(.delete, "/v1/keys/\(id)").status == .noContent)
            #expect(try await app.request(.get, "/v1/experiments", key: secret).status == .unauthorized)
            #expect(try await app.request(.delete, "/v1/keys/\(id)").status == .notFound)
            #expect(try await app.request(.get, "/v1/keys").json()["keys"]?.arrayValue?.contains { $0["id"]?.stringValue == id } == false)
        }
    }

    @Test func keyCreationValidatesItsBody() async throws {
        try await TestApp.run { app in
            let r = try await app.request(.post, "/v1/keys", json: ["role": "root", "extra": 1])
            #expect(r.status == .badRequest)
            #expect(Set(try r.error().paths) == ["role", "extra"])
        }
    }

    @Test func openRoutesNeedNoKey() async throws {
        try await TestApp.run { app in
            let health = try await app.request(.get, "/healthz", key: nil)
            #expect(health.status == .ok)
            // A probe is asked again until ready: the app's first database answer can take over
            // /readyz's two seconds while the other suites load the machine.
            var ready = try await app.request(.get, "/readyz", key: nil)
            let deadline = ContinuousClock.now + .seconds(20)
            while ready.status != .ok, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                ready = try await app.request(.get, "/readyz", key: nil)
            }
            #expect(ready.status == .ok)
            #expect(try ready.json()["database"] == true)
        }
    }
}
