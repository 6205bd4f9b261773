import AviaryCore
import AviaryTestSupport
import Foundation
import Logging
import Testing

@testable import AviaryServer

/// `/openapi.json` names exactly the router's routes and methods (the dashboard's `/ui` left
/// out), so the published contract cannot drift from the server.
struct OpenAPITests {
    @Test func theDocumentNamesEveryRouteAndNoOther() async throws {
        let configuration = AviaryConfiguration(
            databaseURL: "postgres://nobody@127.0.0.1:1/none", migrationsDirectory: TestDatabase.migrationsDirectory)
        let server = try await AviaryServerParts(configuration: configuration, logger: Logger(label: "openapi-test"))
        var routed: Set<String> = []
        for route in server.router.routes {
            // Hummingbird writes captures as `:key`; OpenAPI as `{key}`.
            let path = "/" + route.path.description.split(separator: "/").map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : String($0) }
                .joined(separator: "/")
            if path == "/ui" || path.hasPrefix("/ui/") { continue }
            routed.insert("\(route.method.rawValue) \(path)")
        }
        let document = try JSON.parse(Array(buffer: try OpenAPIContract.load().document))
        var documented: Set<String> = []
        for (path, item) in document["paths"]?.objectValue ?? [:] {
            for method in (item.objectValue ?? [:]).keys where ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        #expect(routed.subtracting(documented).isEmpty, "routes missing from openapi.json: \(routed.subtracting(documented).sorted())")
        #expect(documented.subtracting(routed).isEmpty, "documented routes the server does not have: \(documented.subtracting(routed).sorted())")
        #expect(document["openapi"]?.stringValue == "3.1.0" && routed.count > 30)
    }
}
