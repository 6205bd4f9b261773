import AviaryCore
import HTTPTypes
import Hummingbird

/// Requires a key of at least `role`: no or unknown key → 401, a client key on an admin route → 403.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AviaryRequestContext

    let authenticator: KeyAuthenticator
    let role: APIKeyRole
    /// OFREP wants 401 and 403 without a body.
    var emptyErrorBodies = false

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if emptyErrorBodies {
            guard let key = Self.presentedKey(request).flatMap(authenticator.authenticate) else {
                return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer"])
            }
            if role == .admin, key.role != .admin { return Response(status: .forbidden) }
            var context = context
            context.apiKey = key
            return try await next(request, context)
        }
        guard let presented = Self.presentedKey(request) else {
            throw APIError(
                .unauthorized, code: "unauthorized", message: "send an API key as Authorization: Bearer <key> or X-API-Key: <key>",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        guard let key = authenticator.authenticate(presented) else {
            throw APIError(.unauthorized, code: "unauthorized", message: "the API key is not valid", headers: [.wwwAuthenticate: "Bearer"])
        }
        if role == .admin, key.role != .admin {
            throw APIError(.forbidden, code: "forbidden", message: "this route needs an admin key; client keys can only assign, send events and opt out")
        }
        var context = context
        context.apiKey = key
        return try await next(request, context)
    }

    static func presentedKey(_ request: Request) -> String? {
        if let auth = request.headers[.authorization] {
            let parts = auth.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let token = parts[1].trimmedOWS
                if !token.isEmpty { return token }
            }
        }
        if let key = request.headers[.xAPIKey]?.trimmedOWS, !key.isEmpty { return key }
        return nil
    }
}

extension HTTPField.Name {
    static let xAPIKey = Self("X-API-Key")!
}
