import AviaryCore
import AviaryPostgres
import AviaryServer
import AviaryTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

let adminToken = "test-admin-token-0123456789abcdef"

/// A server on a fresh, migrated database, driven through HummingbirdTesting.
struct TestApp {
    let client: any TestClientProtocol
    let database: AviaryDatabase
    let url: String

    static func run(_ mode: TestingSetup = .router, corsOrigins: [String] = [], _ body: @Sendable (TestApp) async throws -> Void) async throws {
        try await TestDatabase.withMigrated { url, database in
            let configuration = AviaryConfiguration(
                databaseURL: url, port: 0, adminToken: adminToken, corsOrigins: corsOrigins, logLevel: .error,
                migrationsDirectory: TestDatabase.migrationsDirectory, databaseMaxConnections: 4)
            let app = try await buildApplication(configuration: configuration)
            try await app.test(mode) { client in
                try await body(TestApp(client: client, database: database, url: url))
            }
        }
    }

    @discardableResult
    func request(
        _ method: HTTPRequest.Method, _ path: String, key: String? = adminToken, json: JSON? = nil, body: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let key, headers[.authorization] == nil { headers[.authorization] = "Bearer \(key)" }
        var buffer: ByteBuffer?
        if let json {
            buffer = ByteBuffer(data: json.canonicalData())
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        } else if let body {
            buffer = ByteBuffer(string: body)
        }
        return try await client.execute(uri: path, method: method, headers: headers, body: buffer)
    }

    /// Creates a key through the API and returns its secret and id.
    func createKey(role: APIKeyRole) async throws -> (secret: String, id: String) {
        let response = try await request(.post, "/v1/keys", json: ["role": .string(role.rawValue), "name": "test"])
        #expect(response.status == .created)
        let json = try response.json()
        return (try #require(json["key"]?.stringValue), try #require(json["id"]?.stringValue))
    }
}

extension TestResponse {
    func json() throws -> JSON {
        try JSON.parse(Array(buffer: body))
    }

    /// The error body (docs/api.md, "Errors"): code and the paths of its details.
    func error() throws -> (code: String, paths: [String], message: String) {
        let json = try json()
        let error = try #require(json["error"], "not an error body: \(String(buffer: body))")
        return (
            error["code"]?.stringValue ?? "", error["details"]?.arrayValue?.compactMap { $0["path"]?.stringValue } ?? [],
            error["message"]?.stringValue ?? ""
        )
    }
}

/// The README's `chat-release` with a `cn-east` rule, as docs/integrations.md has it.
func chatRelease(key: String = "chat-release") -> JSON {
    [
        "key": .string(key),
        "name": "LobeChat v1.9.0 canary",
        "description": "Qwen adapter + voice input plugin",
        "unit": "user_id",
        "salt": .string(key),
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
        "metrics": ["primary": ["answer_rating"], "secondary": ["messages_per_user"], "guardrails": ["error_rate", "latency_p99"]],
        "rollout": nil,
    ]
}

let internalCohort: JSON = ["name": "Staff", "condition": ["attr": "email", "ends_with": "@lobehub.com"]]

extension TestApp {
    /// That experiment with its `internal` cohort (cookie `internal=1`), started.
    func startChatRelease() async throws {
        try await request(.put, "/v1/cohorts/internal", json: ["condition": ["attr": "cookie.internal", "eq": "1"]])
        #expect(try await request(.post, "/v1/experiments", json: chatRelease()).status == .created)
        #expect(try await request(.post, "/v1/experiments/chat-release/start").status == .ok)
        try await waitUntil { try await self.request(.get, "/v1/assign/chat-release", key: adminToken).status == .ok }
    }

    /// Polls `condition` every 20 ms for up to `timeout`; returns how long it took.
    @discardableResult
    func waitUntil(timeout: Duration = .seconds(5), _ condition: @Sendable () async throws -> Bool) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < timeout {
            if try await condition() { return clock.now - start }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met within \(timeout)")
        return timeout
    }
}
