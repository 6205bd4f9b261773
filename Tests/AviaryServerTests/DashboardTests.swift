import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import AviaryServer

/// The dashboard at `/ui` on a real database: sessions, CSRF, each action against its REST
/// route, and the numbers of a page against the JSON report.
struct DashboardTests {
    /// Logs in with `key` through the form; answers the session cookie (name=value) and the
    /// session's CSRF token read from a page.
    static func logIn(_ app: TestApp, key: String = adminToken) async throws -> (cookie: String, csrf: String) {
        let form = try await app.request(.get, "/ui/login", key: nil)
        let loginCookie = try #require(form.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        let token = try #require(hidden("csrf_token", in: String(buffer: form.body)))
        let login = try await app.request(
            .post, "/ui/login", key: nil, body: "key=\(key)&csrf_token=\(token)",
            headers: [.contentType: "application/x-www-form-urlencoded", .cookie: loginCookie])
        #expect(login.status == .seeOther && login.headers[.location] == "/ui/experiments")
        let cookie = try #require(login.headers[.setCookie]?.split(separator: ";").first.map(String.init))
        let page = try await app.request(.get, "/ui/experiments", key: nil, headers: [.cookie: cookie])
        #expect(page.status == .ok)
        return (cookie, try #require(hidden("csrf_token", in: String(buffer: page.body))))
    }

    static func hidden(_ name: String, in html: String) -> String? {
        guard let range = html.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    static func post(_ app: TestApp, _ path: String, _ session: (cookie: String, csrf: String)?, csrf: String?, extra: String = "") async throws -> TestResponse {
        var body = csrf.map { "csrf_token=\($0)" } ?? ""
        if !extra.isEmpty { body += (body.isEmpty ? "" : "&") + extra }
        var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
        if let session { headers[.cookie] = session.cookie }
        return try await app.request(.post, path, key: nil, body: body, headers: headers)
    }

    @Test func pagesWithoutASessionGoToTheLogin() async throws {
        try await TestApp.run { app in
            for path in ["/ui/experiments", "/ui/experiments/chat-release", "/ui/audit", "/ui/experiments/chat-release/start"] {
                let r = try await app.request(.get, path, key: nil)
                #expect(r.status == .seeOther && r.headers[.location] == "/ui/login", "\(path)")
            }
            // A forged or tampered cookie is no session.
            for cookie in ["aviary_session=key_bootstrap.99999999999.00", "aviary_session=garbage"] {
                #expect(try await app.request(.get, "/ui/experiments", key: nil, headers: [.cookie: cookie]).status == .seeOther)
            }
            #expect(try await app.request(.get, "/ui", key: nil).headers[.location] == "/ui/experiments")
        }
    }

    @Test func theSessionCookieIsHttpOnlyStrictExpiringAndSecureOverHTTPS() async throws {
        try await TestApp.run { app in
            let form = try await app.request(.get, "/ui/login", key: nil, headers: [.init("X-Forwarded-Proto")!: "https"])
            let token = try #require(Self.hidden("csrf_token", in: String(buffer: form.body)))
            let loginCookie = try #require(form.headers[.setCookie])
            #expect(loginCookie.contains("HttpOnly") && loginCookie.contains("SameSite=Strict") && loginCookie.contains("Secure"))
            let login = try await app.request(
                .post, "/ui/login", key: nil, body: "key=\(adminToken)&csrf_token=\(token)",
                headers: [
                    .contentType: "application/x-www-form-urlencoded", .cookie: String(loginCookie.split(separator: ";")[0]),
                    .init("X-Forwarded-Proto")!: "https",
                ])
            let cookie = try #require(login.headers[.setCookie])
            #expect(cookie.hasPrefix("aviary_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"))
            #expect(cookie.contains("Max-Age=28800") && cookie.contains("Path=/ui") && cookie.contains("Secure"))
            // Over plain HTTP, no Secure.
            let plain = try await Self.logIn(app)
            #expect(!plain.cookie.isEmpty)
            // Logging out clears it.
            let out = try await Self.post(app, "/ui/logout", plain, csrf: plain.csrf)
            #expect(out.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func clientKeysAndForgedLoginFormsDoNotLogIn() async throws {
        try await TestApp.run { app in
            let client = try await app.createKey(role: .client)
            let form = try await app.request(.get, "/ui/login", key: nil)
            let token = try #require(Self.hidden("csrf_token", in: String(buffer: form.body)))
            let loginCookie = String(try #require(form.headers[.setCookie]).split(separator: ";")[0])
            let refused = try await app.request(
                .post, "/ui/login", key: nil, body: "key=\(client.secret)&csrf_token=\(token)",
                headers: [.contentType: "application/x-www-form-urlencoded", .cookie: loginCookie])
            #expect(refused.status == .seeOther && refused.headers[.location] == "/ui/login?failed=1" && refused.headers[.setCookie] == nil)
            // A login form posted from elsewhere carries no matching token.
            let forged = try await app.request(
                .post, "/ui/login", key: nil, body: "key=\(adminToken)&csrf_token=\(token)", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(forged.status == .forbidden && forged.headers[.setCookie] == nil)
        }
    }

    @Test func aPostWithoutTheSessionsTokenChangesNothing() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.put, "/v1/cohorts/internal", json: ["condition": ["attr": "cookie.internal", "eq": "1"]]).status == .created)
            #expect(try await app.request(.post, "/v1/experiments", json: chatRelease()).status == .created)
            let session = try await Self.logIn(app)
            let other = try await Self.logIn(app)
            for csrf in [nil, "", "0123", other.csrf + "0"] as [String?] {
                let r = try await Self.post(app, "/ui/experiments/chat-release/start", session, csrf: csrf)
                #expect(r.status == .forbidden, "\(String(describing: csrf))")
            }
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json()["status"] == "draft")
            let audit = try await app.request(.get, "/v1/audit?experiment=chat-release").json()
            #expect(audit["entries"]?.arrayValue?.count == 1)
        }
    }

    static func rolloutExperiment(_ key: String) -> JSON {
        [
            "key": .string(key),
            "variants": [["key": "stable", "value": 1], ["key": "canary", "value": 2]], "control": "stable",
            "rules": [["name": "everyone", "serve": ["split": [["variant": "stable", "weight": 100]]]]],
            "rollout": ["variant": "canary", "steps": [10, 50, 100], "step_seconds": 3600, "approval_before": [50]],
        ]
    }

    @Test func eachButtonDoesWhatItsRESTRouteDoes() async throws {
        try await TestApp.run { app in
            let session = try await Self.logIn(app)
            // (action, form fields, REST path suffix, REST body)
            let steps: [(String, String, String, JSON?)] = [
                ("start", "", "start", nil), ("approve", "", "rollout/approve", nil), ("pause", "reason=looking", "pause", ["reason": "looking"]),
                ("resume", "", "resume", nil), ("rollback", "reason=errors", "rollback", ["reason": "errors"]),
            ]
            for key in ["by-ui", "by-rest"] {
                #expect(try await app.request(.post, "/v1/experiments", json: Self.rolloutExperiment(key)).status == .created)
            }
            for (action, fields, route, body) in steps {
                let ui = try await Self.post(app, "/ui/experiments/by-ui/\(action)", session, csrf: session.csrf, extra: fields)
                #expect(ui.status == .seeOther && ui.headers[.location] == "/ui/experiments/by-ui", "\(action)")
                let rest = try await app.request(.post, "/v1/experiments/by-rest/\(route)", json: body)
                #expect(rest.status == .ok, "\(action)")
                try await Self.expectSame(app, action)
            }
            // Stop with a winner, on a running experiment of each.
            for key in ["stop-ui", "stop-rest"] {
                var body = Self.rolloutExperiment(key)
                if case .object(var o) = body { o["rollout"] = .null; body = .object(o) }
                #expect(try await app.request(.post, "/v1/experiments", json: body).status == .created)
                #expect(try await app.request(.post, "/v1/experiments/\(key)/start").status == .ok)
            }
            // The button's confirmation page offers the winners.
            let confirm = try await app.request(.get, "/ui/experiments/stop-ui/stop", key: nil, headers: [.cookie: session.cookie])
            let form = String(buffer: confirm.body)
            #expect(confirm.status == .ok && form.contains("<option value=\"canary\">") && form.contains("value=\"\(session.csrf)\""))
            let stopped = try await Self.post(app, "/ui/experiments/stop-ui/stop", session, csrf: session.csrf, extra: "winner=canary")
            #expect(stopped.status == .seeOther)
            #expect(try await app.request(.post, "/v1/experiments/stop-rest/stop", json: ["winner": "canary"]).status == .ok)
            let ui = try await app.request(.get, "/v1/experiments/stop-ui").json(), rest = try await app.request(.get, "/v1/experiments/stop-rest").json()
            #expect(ui["status"] == "stopped" && ui["winner"] == "canary" && rest["winner"] == ui["winner"])
        }
    }

    /// The two experiments are in the same state, and their newest audit entries say the same.
    static func expectSame(_ app: TestApp, _ action: String) async throws {
        let ui = try await app.request(.get, "/v1/experiments/by-ui").json(), rest = try await app.request(.get, "/v1/experiments/by-rest").json()
        #expect(ui["status"] == rest["status"] && ui["rules"] == rest["rules"] && ui["revision"] == rest["revision"], "\(action)")
        #expect(ui["rollout_state"]?["state"] == rest["rollout_state"]?["state"] && ui["rollout_state"]?["step"] == rest["rollout_state"]?["step"], "\(action)")
        #expect(ui["rollout_state"]?["reason"] == rest["rollout_state"]?["reason"], "\(action)")
        func newest(_ key: String) async throws -> JSON? {
            try await app.request(.get, "/v1/audit?experiment=\(key)&limit=1").json()["entries"]?.arrayValue?.first
        }
        let (a, b) = (try await newest("by-ui"), try await newest("by-rest"))
        #expect(a?["action"] == b?["action"] && a?["actor_key_id"] == b?["actor_key_id"] && a?["actor_key_id"] == "key_bootstrap", "\(action)")
    }

    /// The numbers of a row, as shown.
    static func row(_ html: String, metric: String, group: String) -> [String: String] {
        guard let article = html.range(of: "id=\"metric-\(metric)\""), let start = html.range(of: "data-group=\"\(group)\"", range: article.upperBound..<html.endIndex)
        else { return [:] }
        let end = html.range(of: "</tr>", range: start.upperBound..<html.endIndex)?.lowerBound ?? html.endIndex
        var cells: [String: String] = [:]
        var rest = html[start.upperBound..<end]
        while let open = rest.range(of: "<td class=\"num ") {
            let afterClass = rest[open.upperBound...]
            guard let quote = afterClass.firstIndex(of: "\""), let close = afterClass.range(of: "</td>") else { break }
            let name = String(afterClass[..<quote])
            let value = afterClass[afterClass.index(quote, offsetBy: 2)..<close.lowerBound]
            cells[name] = String(value)
            rest = afterClass[close.upperBound...]
        }
        return cells
    }

    /// A shown number against the report's, within the rounding of docs/dashboard.md.
    static func shows(_ text: String?, _ value: Double?, _ what: String) {
        guard let value else {
            #expect(text == "—", "\(what): \(String(describing: text)) for null")
            return
        }
        guard let text, let shown = Double(text.replacingOccurrences(of: "−", with: "-").replacingOccurrences(of: "+", with: "")) else {
            Issue.record("\(what): \(String(describing: text)) is not a number")
            return
        }
        #expect(abs(shown - value) <= 5e-4 * abs(value) + 1e-12, "\(what): shows \(text), the report has \(value)")
    }

    @Test func anExperimentPageShowsTheReportsNumbers() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.put, "/v1/metrics/rating", json: ["kind": "mean", "event": "rating"]).status == .created)
            #expect(try await app.request(.put, "/v1/metrics/errors", json: ["kind": "ratio", "numerator": "error", "denominator": "request"]).status == .created)
            #expect(try await app.request(.put, "/v1/cohorts/internal", json: ["condition": ["attr": "cookie.internal", "eq": "1"]]).status == .created)
            var body = chatRelease()
            if case .object(var o) = body {
                o["metrics"] = ["primary": ["rating"], "secondary": ["errors"]]
                o["rules"] = [["name": "everyone", "serve": ["split": [["variant": "stable", "weight": 50], ["variant": "canary", "weight": 50]]]]]
                body = .object(o)
            }
            #expect(try await app.request(.post, "/v1/experiments", json: body).status == .created)
            #expect(try await app.request(.post, "/v1/experiments/chat-release/start").status == .ok)
            try await app.waitUntil { try await app.request(.get, "/v1/assign/chat-release", headers: [.init("X-Aviary-User")!: "u0"]).status == .ok }
            var events: [JSON] = []
            let ts = Timestamp.format(Date().addingTimeInterval(1))
            for i in 0..<60 {
                try await app.request(.get, "/v1/assign/chat-release", headers: [.init("X-Aviary-User")!: "u\(i)"])
                for j in 0..<(1 + i % 3) {
                    events.append(["type": "rating", "user_id": .string("u\(i)"), "ts": .string(ts), "value": .number(Double(1 + (i * 7 + j) % 5))])
                    events.append(["type": "request", "user_id": .string("u\(i)"), "ts": .string(ts)])
                    if (i + j) % 4 == 0 { events.append(["type": "error", "user_id": .string("u\(i)"), "ts": .string(ts)]) }
                }
            }
            #expect(try await app.request(.post, "/v1/events", json: .array(events)).status == .ok)
            try await app.waitUntil {
                try await app.request(.get, "/v1/experiments/chat-release/report").json()["exposed_units"]?.objectValue?.values.compactMap(\.numberValue).reduce(0, +) == 60
            }
            let report = try await app.request(.get, "/v1/experiments/chat-release/report").json()
            let session = try await Self.logIn(app)
            let page = try await app.request(.get, "/ui/experiments/chat-release", key: nil, headers: [.cookie: session.cookie])
            #expect(page.status == .ok && page.headers[.contentType] == "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            #expect(html.contains("everyone → 50 % canary"))
            #expect(html.contains("<svg") && html.contains("<title>rating: difference from stable"))
            for group in report["groups"]?.arrayValue ?? [] {
                let variant = group["variant"]?.stringValue ?? ""
                for metric in ["rating", "errors"] {
                    let m = group["metrics"]?[metric]
                    let cells = Self.row(html, metric: metric, group: variant)
                    #expect(cells["units"] == group["units"]?.numberValue.map { String(Int($0)) }, "\(variant) \(metric) units")
                    #expect(cells["n"] == m?["n"]?.numberValue.map { String(Int($0)) }, "\(variant) \(metric) n")
                    Self.shows(cells["mean"], m?["mean"]?.numberValue, "\(variant) \(metric) mean")
                    Self.shows(cells["delta"], m?["delta"]?.numberValue, "\(variant) \(metric) delta")
                    if let ci = m?["ci95"]?.arrayValue {
                        let shown = (cells["ci"] ?? "").trimmingCharacters(in: CharacterSet(charactersIn: "[]")).components(separatedBy: ", ")
                        #expect(shown.count == 2, "\(variant) \(metric) ci \(cells["ci"] ?? "")")
                        if shown.count == 2 {
                            Self.shows(shown[0], ci[0].numberValue, "\(variant) \(metric) ci low")
                            Self.shows(shown[1], ci[1].numberValue, "\(variant) \(metric) ci high")
                        }
                    } else {
                        #expect(cells["ci"] == "—")
                    }
                    if let p = m?["p_value"]?.numberValue, p >= 0.0001 {
                        #expect(abs((Double(cells["p"] ?? "") ?? -1) - p) <= 5e-3 * p, "\(variant) \(metric) p \(cells["p"] ?? "") vs \(p)")
                    }
                }
            }
            // Grouped by model (the events carry none here) and by app version, the page renders.
            for by in ["model", "app_version"] {
                let grouped = try await app.request(.get, "/ui/experiments/chat-release?by=\(by)", key: nil, headers: [.cookie: session.cookie])
                #expect(grouped.status == .ok && String(buffer: grouped.body).contains("aria-current=\"page\" class=\"current\">by \(by.replacingOccurrences(of: "_", with: " "))"))
            }
            // The list: the split in words and the units.
            let list = String(buffer: try await app.request(.get, "/ui/experiments", key: nil, headers: [.cookie: session.cookie]).body)
            #expect(list.contains("stable 50 %, canary 50 %") && list.contains(">60<"))
            // The audit page shows what the start changed.
            let audit = String(buffer: try await app.request(.get, "/ui/audit?experiment=chat-release", key: nil, headers: [.cookie: session.cookie]).body)
            #expect(audit.contains("experiment.start") && audit.contains("<code>status</code>") && audit.contains("&quot;running&quot;"))
            // The CSV download works with the session alone.
            let csv = try await app.request(.get, "/ui/experiments/chat-release/report.csv", key: nil, headers: [.cookie: session.cookie])
            #expect(csv.status == .ok && String(buffer: csv.body).hasPrefix("variant,model,app_version,metric"))
        }
    }
}
