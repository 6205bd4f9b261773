import Foundation
import Hummingbird

/// `GET /openapi.json` (open): the OpenAPI 3.1 description of every route but the dashboard's,
/// kept in `OpenAPI/openapi.json`; `OpenAPITests` checks it names exactly the router's routes.
struct OpenAPIController {
    let document: ByteBuffer

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("openapi.json") { [document] _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: document))
        }
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "OpenAPI/openapi.json is not beside the executable (AviaryServer's resources)" }
    }

    static func loadDocument() throws -> ByteBuffer {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json", subdirectory: "OpenAPI") else {
            throw Missing()
        }
        return ByteBuffer(data: try Data(contentsOf: url))
    }
}
