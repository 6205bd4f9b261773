import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import RawStructuredFieldValues
import Testing

@testable import AviaryPostgres

extension HTTPField.Name {
    static let aviaryUser = Self("X-Aviary-User")!
    static let aviaryRegion = Self("X-Aviary-Region")!
    static let variantChatRelease = Self("X-Aviary-Variant-chat-release")!
    static let assignments = Self("X-Aviary-Assignments")!
}

@Suite struct AssignAPITests {
    @Test func staffCookieGetsTheCanaryWithHeadersAndBody() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let client = try await app.createKey(role: .client)
            let r = try await app.request(.get, "/v1/assign", key: client.secret, headers: [.aviaryUser: "u-42", .cookie: "internal=1; aviary_id=anon-1"])
            #expect(r.status == .ok)
            #expect(r.headers[.variantChatRelease] == "canary")
            #expect(r.headers[.assignments] == "chat-release=canary")
            #expect(r.headers[.cacheControl] == "no-store")
            #expect(r.headers[.setCookie] == nil)
            let body = try r.json()
            #expect(body["unit"] == ["user_id": "u-42", "anonymous_id": "anon-1"])
            #expect(body["assignments"]?["chat-release"] == ["variant": "canary", "value": ["version": "v1.9.0"], "reason": "rule:staff", "in_experiment": true])
        }
    }

    @Test func regionAndEveryoneRulesFollowTheBuckets() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            for i in 0..<200 {
                let bucket = Bucketing.bucket(salt: "chat-release", unit: "u-\(i)")
                let east = try await app.request(.get, "/v1/assign/chat-release?user=u-\(i)", headers: [.aviaryRegion: "cn-east"]).json()
                #expect(east["assignments"]?["chat-release"]?["variant"]?.stringValue == (bucket < 7500 ? "stable" : "canary"))
                #expect(east["assignments"]?["chat-release"]?["reason"] == "rule:east")
                let rest = try await app.request(.get, "/v1/assign/chat-release?user=u-\(i)").json()
                #expect(rest["assignments"]?["chat-release"]?["variant"]?.stringValue == (bucket < 9500 ? "stable" : "canary"))
            }
        }
    }

    /// The header is written by hand for speed; RFC 8941's reference parser must read it back.
    @Test func assignmentsHeaderIsAValidStructuredDictionary() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            for key in ["a-flag", "zeta", "9lives"] {
                var body = chatRelease(key: key).objectValue!
                body["variants"] = [["key": "off"], ["key": "2x"]]
                body["control"] = "off"
                body["rules"] = [["serve": ["variant": "2x"]]]
                #expect(try await app.request(.post, "/v1/experiments", json: .object(body)).status == .created)
                #expect(try await app.request(.post, "/v1/experiments/\(key)/start").status == .ok)
            }
            let r = try await app.request(.get, "/v1/assign", headers: [.aviaryUser: "u-1", .cookie: "internal=1"])
            let header = try #require(r.headers[.assignments])
            var parser = StructuredFieldValueParser(Array(header.utf8))
            let dictionary = try parser.parseDictionaryFieldValue()
            #expect(dictionary.map(\.0) == ["a-flag", "chat-release", "zeta"], "keys starting with a digit are left out")
            guard case .item(let item) = dictionary.first(where: { $0.0 == "chat-release" })?.1, case .token(let canary) = item.bareItem else {
                Issue.record("chat-release is not a token: \(header)")
                return
            }
            #expect(canary == "canary")
            guard case .item(let two) = dictionary.first(where: { $0.0 == "zeta" })?.1, case .string(let variant) = two.bareItem else {
                Issue.record("a variant key starting with a digit must be a string: \(header)")
                return
            }
            #expect(variant == "2x")
            #expect(r.headers[HTTPField.Name("X-Aviary-Variant-9lives")!] == "2x")
        }
    }

    @Test func mintsTheAnonymousCookieWhenAbsent() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let r = try await app.request(.get, "/v1/assign")
            let cookie = try #require(r.headers[.setCookie])
            #expect(cookie.hasSuffix("; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"))
            let id = String(cookie.dropFirst("aviary_id=".count).prefix { $0 != ";" })
            #expect(!id.isEmpty)
            #expect(try r.json()["unit"]?["anonymous_id"]?.stringValue == id)
            #expect(try r.json()["assignments"]?["chat-release"]?["reason"] == "no_unit")
        }
    }

    @Test func bodyNoneAnswers204WithHeaders() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let r = try await app.request(.get, "/v1/assign/chat-release?body=none", headers: [.cookie: "internal=1", .aviaryUser: "u-1"])
            #expect(r.status == .noContent)
            #expect(r.body.readableBytes == 0)
            #expect(r.headers[.variantChatRelease] == "canary")
            #expect(try await app.request(.get, "/v1/assign/nothing-here").status == .notFound)
        }
    }

    @Test func postWithAnExplicitContextAgreesWithGet() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            for i in 0..<50 {
                let get = try await app.request(.get, "/v1/assign?user=u-\(i)", headers: [.aviaryRegion: "cn-east"]).json()
                let post = try await app.request(.post, "/v1/assign", json: ["context": ["user_id": .string("u-\(i)"), "region": "cn-east"]]).json()
                #expect(get["assignments"] == post["assignments"])
            }
            let one = try await app.request(.post, "/v1/assign", json: ["context": ["user_id": "u-1"], "experiments": ["chat-release"]])
            #expect(try one.json()["assignments"]?.objectValue?.count == 1)
            let unknown = try await app.request(.post, "/v1/assign", json: ["context": ["user_id": "u-1"], "experiments": ["chat-release", "nope"]])
            #expect(unknown.status == .badRequest)
            #expect(try unknown.error().paths == ["experiments[1]"])
            let bad = try await app.request(.post, "/v1/assign", json: ["context": ["user_id": 5, "nested": ["a": 1]]])
            #expect(bad.status == .badRequest)
            #expect(Set(try bad.error().paths) == ["context.user_id", "context.nested"])
        }
    }

    /// Experiments `a-00` … `a-<n-1>` (and any `prefix`), started, each serving `on` to everyone.
    static func startFlags(_ app: TestApp, _ n: Int, prefix: String = "a-") async throws {
        for i in 0..<n {
            let key = prefix + String(format: "%02d", i)
            var body = chatRelease(key: key).objectValue!
            body["variants"] = [["key": "off"], ["key": "on"]]
            body["control"] = "off"
            body["rules"] = [["serve": ["variant": "on"]]]
            body["metrics"] = nil
            #expect(try await app.request(.post, "/v1/experiments", json: .object(body)).status == .created)
            #expect(try await app.request(.post, "/v1/experiments/\(key)/start").status == .ok)
        }
    }

    /// docs/api.md, "Assignment": an all-experiments answer sends at most 64 variant headers and
    /// 4 KiB of them with `X-Aviary-Assignments`, says how many it left out, and its body has all.
    @Test func anAnswerForEveryExperimentKeepsItsHeadersWithinBudget() async throws {
        try await TestApp.run { app in
            try await Self.startFlags(app, 70)
            let r = try await app.request(.get, "/v1/assign?user=u-1")
            let variantHeaders = r.headers.filter { $0.name.canonicalName.hasPrefix("x-aviary-variant-") }
            #expect(variantHeaders.count == 64)
            #expect(r.headers[HTTPField.Name("X-Aviary-Truncated")!] == "6")
            // The first 64 by key, in both headers, the dictionary holding the same ones.
            #expect(variantHeaders.map(\.name.canonicalName) == (0..<64).map { "x-aviary-variant-a-" + String(format: "%02d", $0) })
            var parser = StructuredFieldValueParser(Array((r.headers[.assignments] ?? "").utf8))
            let dictionary = try parser.parseDictionaryFieldValue()
            #expect(dictionary.count == 64)
            #expect(try r.json()["assignments"]?.objectValue?.count == 70)
            // Selected, every one is sent, and nothing is said to be left out.
            let all = (0..<70).map { "a-" + String(format: "%02d", $0) }.joined(separator: ",")
            let selected = try await app.request(.get, "/v1/assign?user=u-1&experiments=\(all)")
            #expect(selected.headers.filter { $0.name.canonicalName.hasPrefix("x-aviary-variant-") }.count == 70)
            #expect(selected.headers[HTTPField.Name("X-Aviary-Truncated")!] == nil)
        }
    }

    @Test func longKeysMeetTheByteBudgetFirst() async throws {
        try await TestApp.run { app in
            let prefix = String(repeating: "k", count: 58) + "-"
            try await Self.startFlags(app, 40, prefix: prefix)
            let r = try await app.request(.get, "/v1/assign?user=u-1")
            let variantHeaders = r.headers.filter { $0.name.canonicalName.hasPrefix("x-aviary-variant-") }
            let bytes = r.headers.filter { $0.name.canonicalName.hasPrefix("x-aviary-variant-") || $0.name == .assignments }
                .reduce(0) { $0 + $1.name.rawName.utf8.count + $1.value.utf8.count + 4 }
            #expect(bytes <= 4_096 && variantHeaders.count < 40 && variantHeaders.count > 20, "\(bytes) bytes, \(variantHeaders.count) headers")
            #expect(r.headers[HTTPField.Name("X-Aviary-Truncated")!] == String(40 - variantHeaders.count))
            #expect(try r.json()["assignments"]?.objectValue?.count == 40)
        }
    }

    /// `?experiments=` selects, in body and headers; repeats and commas both work; a name that
    /// is not an active experiment is a 400 naming it.
    @Test func experimentsSelectsWhatAGetAnswers() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            try await Self.startFlags(app, 3)
            let r = try await app.request(.get, "/v1/assign?user=u-1&experiments=a-02,chat-release&experiments=a-02")
            #expect(r.status == .ok)
            #expect(Set(try r.json()["assignments"]?.objectValue?.keys ?? [:].keys) == ["a-02", "chat-release"])
            #expect(r.headers.filter { $0.name.canonicalName.hasPrefix("x-aviary-variant-") }.map(\.name.canonicalName)
                == ["x-aviary-variant-a-02", "x-aviary-variant-chat-release"])
            #expect(r.headers[.assignments] == "a-02=on, chat-release=stable")
            for (query, paths) in [("a-01,a-7,chat-relase", ["experiments[1]", "experiments[2]"]), ("", ["experiments[0]"]), ("a-01,", ["experiments[1]"])] {
                let bad = try await app.request(.get, "/v1/assign?user=u-1&experiments=\(query)")
                #expect(bad.status == .badRequest, "\(query)")
                #expect(try bad.error().paths == paths, "\(query)")
            }
            let typo = try await app.request(.get, "/v1/assign?experiments=chat-relase")
            #expect(try typo.error().message.contains("\"chat-relase\" is not an active experiment"))
        }
    }

    @Test func statusChangesReachAssignmentAtOnce() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let path = "/v1/assign/chat-release"
            let headers: HTTPFields = [.cookie: "internal=1", .aviaryUser: "u-1"]
            try await app.request(.post, "/v1/experiments/chat-release/pause")
            let elapsed = try await app.waitUntil {
                try await app.request(.get, path, headers: headers).json()["assignments"]?["chat-release"]?["reason"] == "not_running"
            }
            #expect(elapsed < .seconds(1))
            #expect(try await app.request(.get, path, headers: headers).headers[.variantChatRelease] == "stable")
            try await app.request(.post, "/v1/experiments/chat-release/stop", json: ["winner": "canary"])
            try await app.waitUntil { try await app.request(.get, path, headers: [:]).json()["assignments"]?["chat-release"]?["reason"] == "winner" }
            #expect(try await app.request(.get, path).headers[.variantChatRelease] == "canary")
            try await app.request(.delete, "/v1/experiments/chat-release")
            try await app.waitUntil { try await app.request(.get, path).status == .notFound }
        }
    }

    @Test func optOutServesControlAndOptInRestores() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            let client = try await app.createKey(role: .client)
            let headers: HTTPFields = [.cookie: "internal=1", .aviaryUser: "u-opt"]
            let out = try await app.request(.post, "/v1/opt-out", key: client.secret, json: ["user_id": "u-opt"])
            #expect(out.status == .ok)
            #expect(try out.json() == ["opted_out": true, "units": ["u-opt"]])
            let elapsed = try await app.waitUntil {
                try await app.request(.get, "/v1/assign", headers: headers).json()["assignments"]?["chat-release"]?["reason"] == "opt_out"
            }
            #expect(elapsed < .seconds(1))
            #expect(try await app.request(.get, "/v1/assign", headers: headers).headers[.variantChatRelease] == "stable")
            // Without a body the unit comes from the request, like /v1/assign.
            #expect(try await app.request(.delete, "/v1/opt-out", key: client.secret, headers: [.aviaryUser: "u-opt"]).status == .ok)
            try await app.waitUntil {
                try await app.request(.get, "/v1/assign", headers: headers).json()["assignments"]?["chat-release"]?["reason"] == "rule:staff"
            }
            #expect(try await app.request(.post, "/v1/opt-out", key: client.secret, json: [:]).status == .badRequest)
        }
    }

    @Test func exposuresAreRecordedOncePerUnitAndVariantForParticipantsOnly() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            for _ in 0..<3 {
                for i in 0..<40 { try await app.request(.get, "/v1/assign?user=u-\(i)", headers: [.cookie: "internal=1", .init("CF-IPCountry")!: "SG"]) }
            }
            // No unit: control, not exposed.
            try await app.request(.get, "/v1/assign")
            try await app.waitUntil { try await app.database.exposures.count(experiment: "chat-release")["canary"] == 40 }
            #expect(try await app.database.exposures.count(experiment: "chat-release") == ["canary": 40])
            // Ten of them leave the staff cohort and get the catch-all's variant: a second
            // exposure each, whichever that variant is.
            var moved = 0
            for i in 0..<10 {
                let r = try await app.request(.get, "/v1/assign?user=u-\(i)", headers: [.init("CF-IPCountry")!: "SG"])
                if try r.json()["assignments"]?["chat-release"]?["variant"]?.stringValue != "canary" { moved += 1 }
            }
            #expect(moved > 0)
            let expected = 40 + moved
            try await app.waitUntil { try await app.database.exposures.count(experiment: "chat-release").values.reduce(0, +) == expected }
            let rows = try await app.database.client.query("SELECT count(*)::int FROM exposures WHERE country = 'SG' AND unit LIKE 'u-%'")
            for try await n in rows.decode(Int.self) { #expect(n == 40) }
        }
    }

    @Test func clientRoutesNeedAKey() async throws {
        try await TestApp.run { app in
            try await app.startChatRelease()
            for (method, path) in [(HTTPRequest.Method.get, "/v1/assign"), (.get, "/v1/assign/chat-release"), (.post, "/v1/assign"), (.post, "/v1/opt-out"), (.delete, "/v1/opt-out")] {
                #expect(try await app.request(method, path, key: nil).status == .unauthorized, "\(method) \(path)")
            }
            let ofrep = try await app.request(.post, "/ofrep/v1/evaluate/flags/chat-release", key: nil, json: ["context": ["targetingKey": "u"]])
            #expect(ofrep.status == .unauthorized)
            #expect(ofrep.body.readableBytes == 0)
        }
    }

    @Test func corsForListedOriginsOnly() async throws {
        try await TestApp.run(corsOrigins: ["https://chat.example.com"]) { app in
            try await app.startChatRelease()
            let preflight = try await app.request(
                .options, "/v1/assign", key: nil,
                headers: [.origin: "https://chat.example.com", .accessControlRequestMethod: "GET", .accessControlRequestHeaders: "authorization, x-aviary-user"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowOrigin] == "https://chat.example.com")
            #expect(preflight.headers[.accessControlAllowCredentials] == "true")
            #expect(preflight.headers[.accessControlAllowHeaders] == "authorization, x-aviary-user")

            let r = try await app.request(.get, "/v1/assign", headers: [.origin: "https://chat.example.com", .aviaryUser: "u-1"])
            #expect(r.headers[.accessControlAllowOrigin] == "https://chat.example.com")
            #expect(r.headers[.accessControlAllowCredentials] == "true")
            let exposed = r.headers[.accessControlExposeHeaders] ?? ""
            #expect(exposed.contains("X-Aviary-Variant-chat-release") && exposed.contains("X-Aviary-Assignments"))

            let other = try await app.request(.get, "/v1/assign", headers: [.origin: "https://evil.example.com"])
            #expect(other.headers[.accessControlAllowOrigin] == nil)
            let admin = try await app.request(.get, "/v1/experiments", headers: [.origin: "https://chat.example.com"])
            #expect(admin.headers[.accessControlAllowOrigin] == nil)
            // A preflight CORS refuses: 204 without Access-Control-Allow-Origin, not a 404.
            let refused = try await app.request(.options, "/v1/assign", key: nil, headers: [.origin: "https://evil.example.com", .accessControlRequestMethod: "GET"])
            #expect(refused.status == .noContent && refused.headers[.accessControlAllowOrigin] == nil)
        }
    }

    @Test func withoutOriginsAPreflightIsRefusedAsBrowsersUnderstand() async throws {
        try await TestApp.run { app in
            let preflight = try await app.request(.options, "/v1/assign", key: nil, headers: [.origin: "https://chat.example.com", .accessControlRequestMethod: "GET"])
            #expect(preflight.status == .noContent && preflight.headers[.accessControlAllowOrigin] == nil)
            // Without CORS headers, a plain request is answered as before.
            #expect(try await app.request(.get, "/healthz", key: nil, headers: [.origin: "https://chat.example.com"]).status == .ok)
        }
    }
}
