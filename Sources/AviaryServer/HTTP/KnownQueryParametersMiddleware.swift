import AviaryCore
import Hummingbird

/// Refuses query parameters a route does not take (docs/api.md, "Errors"), as `openapi.json`
/// declares them: a typo such as
/// `GET /v1/experiments?stauts=running` is a 400 naming it, not an answer that ignored it.
/// Mounted on the API's groups; assignment and OFREP take what their protocols say and ignore
/// the rest, and the probes (`/healthz`, `/readyz`, `/metrics`) ignore what probes add.
struct KnownQueryParametersMiddleware: RouterMiddleware {
    /// The query parameters of each operation (`OpenAPIContract.queryParameters`); an operation
    /// that declares none takes none.
    let allowed: [String: Set<String>]

    func handle(
        _ request: Request, context: AviaryRequestContext, next: (Request, AviaryRequestContext) async throws -> Response
    ) async throws -> Response {
        let allowed = self.allowed["\(request.method.rawValue) \(context.endpointPath ?? "")"] ?? []
        var unknown: [String] = []
        for (name, _) in request.uri.queryParameters {
            let name = String(name)
            if !allowed.contains(name), !unknown.contains(name) { unknown.append(name) }
        }
        guard unknown.isEmpty else {
            throw APIError.invalidRequest(unknown.map { name in
                let takes = allowed.isEmpty ? "this route takes none" : "this route takes \(allowed.sorted().joined(separator: ", "))"
                let nearest = Suggestion.nearest(to: name, among: allowed).map { "did you mean \"\($0)\"? " } ?? ""
                return ValidationIssue(path: String(name.prefix(80)), message: "is not a query parameter here (\(nearest)\(takes))")
            })
        }
        return try await next(request, context)
    }
}
