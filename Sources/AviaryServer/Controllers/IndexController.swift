import AviaryCore
import Hummingbird

/// `GET /` (open): where to go from here. A browser (its `Accept` names `text/html`) is sent to
/// the dashboard; anything else gets a small JSON index of links (docs/api.md, "Index").
struct IndexController {
    static let links: JSON = [
        "name": "Aviary",
        "dashboard": "/ui",
        "openapi": "/openapi.json",
        "health": "/healthz",
        "ready": "/readyz",
        "metrics": "/metrics",
        // The server does not serve its docs; they come with the source.
        "docs": "README.md and docs/ in Aviary's source tree; /openapi.json describes every route",
    ]

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("/") { request, _ in
            if let accept = request.headers[.accept], accept.lowercased().contains("text/html") {
                return Response(status: .seeOther, headers: [.location: "/ui"])
            }
            return Response.json(Self.links)
        }
    }
}
