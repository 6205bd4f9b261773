import Hummingbird

/// `GET /openapi.json` (open): the OpenAPI 3.1 description of every route but the dashboard's
/// (`OpenAPIContract`), served as it is kept in `OpenAPI/openapi.json`.
struct OpenAPIController {
    let contract: OpenAPIContract

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("openapi.json") { [document = contract.document] _, _ in
            Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: document))
        }
    }
}
