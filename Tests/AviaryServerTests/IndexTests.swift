import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `GET /` leads somewhere (docs/api.md, "Health"): a browser to the dashboard, a client to links.
@Suite struct IndexTests {
    @Test func theRootLeadsSomewhere() async throws {
        try await TestApp.run { app in
            let browser = try await app.request(.get, "/", key: nil, headers: [.accept: "text/html,application/xhtml+xml;q=0.9"])
            #expect(browser.status == .seeOther && browser.headers[.location] == "/ui")
            let client = try await app.request(.get, "/", key: nil)
            #expect(client.status == .ok)
            let links = try client.json()
            for (name, path) in [("dashboard", "/ui"), ("openapi", "/openapi.json"), ("health", "/healthz"), ("ready", "/readyz")] {
                #expect(links[name]?.stringValue == path)
                #expect(try await app.request(.get, path, key: nil).status != .notFound, "\(path)")
            }
        }
    }
}
