import AviaryCore
import HTTPTypes
import Hummingbird

/// CORS for the browser-facing routes (`/v1/assign`, `/v1/opt-out`, `/v1/events`, `/ofrep/`),
/// for the origins in `AVIARY_CORS_ORIGINS` only; every other preflight is refused the way
/// browsers understand. Answers allow credentials, so
/// `fetch(…, {credentials: "include"})` keeps the `aviary_id` cookie, and expose the
/// `X-Aviary-*` headers each response actually carries (a wildcard is not allowed with credentials).
struct AviaryCORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let origins: Set<String>
    static var prefixes: [String] { ["/v1/assign", "/v1/opt-out", "/v1/events", "/ofrep/"] }
    static var allowedRequestHeaders: Set<String> { ["authorization", "x-api-key", "content-type", "if-none-match", "if-match"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let preflight = request.method == .options && request.headers[.accessControlRequestMethod] != nil
        guard let origin = request.headers[.origin], origins.contains(origin),
            Self.prefixes.contains(where: { request.uri.path.hasPrefix($0) })
        else {
            // A preflight for an origin or route without CORS: 204 without
            // Access-Control-Allow-Origin, which a browser reports as a request blocked by CORS
            // policy (a 404 "no such route" would send its developer looking for a typo).
            if preflight { return Response(status: .noContent, headers: [.vary: "Origin"]) }
            return try await next(request, context)
        }
        if preflight {
            var headers = Self.common(origin)
            headers[.accessControlAllowMethods] = "GET, POST, DELETE, OPTIONS"
            let requested = (request.headers[.accessControlRequestHeaders] ?? "").split(separator: ",").map {
                $0.trimmedOWS.lowercased()
            }
            let allowed = requested.filter { Self.allowedRequestHeaders.contains($0) || $0.hasPrefix("x-aviary-") }
            if !allowed.isEmpty { headers[.accessControlAllowHeaders] = allowed.joined(separator: ", ") }
            headers[.accessControlMaxAge] = "600"
            return Response(status: .noContent, headers: headers)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = try APIError.from(error, logger: context.logger).response(from: request, context: context)
        }
        response.headers.append(contentsOf: Self.common(origin))
        let exposed = response.headers.map(\.name.rawName).filter { $0.lowercased().hasPrefix("x-aviary-") || $0.lowercased() == "etag" }
        if !exposed.isEmpty { response.headers[.accessControlExposeHeaders] = exposed.joined(separator: ", ") }
        return response
    }

    static func common(_ origin: String) -> HTTPFields {
        [.accessControlAllowOrigin: origin, .accessControlAllowCredentials: "true", .vary: "Origin"]
    }
}
