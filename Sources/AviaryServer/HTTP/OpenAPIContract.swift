import AviaryCore
import Foundation
import Hummingbird

/// The routes' contract as `OpenAPI/openapi.json` declares it — the one place a route's
/// method, path, parameters and answers are written. The server serves the document at
/// `/openapi.json`, mounts exactly its operations (`OpenAPITests` fails on a route it does not
/// declare, or one it declares that is not mounted), takes exactly its query parameters
/// (`KnownQueryParametersMiddleware`), and the end-to-end suite fails on an answer whose status
/// its operation does not list.
struct OpenAPIContract: Sendable {
    /// The document's bytes, served as they are.
    let document: ByteBuffer
    /// Each operation's query parameters, by `"METHOD /path/{capture}"`.
    let queryParameters: [String: Set<String>]

    struct Missing: Error, CustomStringConvertible {
        var description: String { "OpenAPI/openapi.json is not beside the executable (AviaryServer's resources)" }
    }

    struct Unreadable: Error, CustomStringConvertible {
        var description: String { "OpenAPI/openapi.json is not a readable OpenAPI document" }
    }

    static func load() throws -> OpenAPIContract {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json", subdirectory: "OpenAPI") else {
            throw Missing()
        }
        return try OpenAPIContract(document: ByteBuffer(data: try Data(contentsOf: url)))
    }

    init(document: ByteBuffer) throws {
        self.document = document
        guard let json = try? JSON.parse(Array(buffer: document)), let paths = json["paths"]?.objectValue else { throw Unreadable() }
        let components = json["components"]?["parameters"]?.objectValue ?? [:]
        func resolved(_ parameter: JSON) -> JSON {
            guard let ref = parameter["$ref"]?.stringValue, let name = ref.split(separator: "/").last else { return parameter }
            return components[String(name)] ?? parameter
        }
        var query: [String: Set<String>] = [:]
        for (path, item) in paths {
            let shared = item["parameters"]?.arrayValue ?? []
            for method in Self.methods {
                guard let operation = item[method] else { continue }
                let names = (shared + (operation["parameters"]?.arrayValue ?? [])).map(resolved).compactMap { p in
                    p["in"]?.stringValue == "query" ? p["name"]?.stringValue : nil
                }
                query["\(method.uppercased()) \(path)"] = Set(names)
            }
        }
        self.queryParameters = query
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options"]
}
