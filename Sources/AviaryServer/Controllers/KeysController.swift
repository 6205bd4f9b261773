import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/keys`: create (the secret is in this one answer only), list, revoke.
struct KeysController {
    /// Reads; every write goes through `changes`.
    let repository: APIKeyRepository
    let changes: Changes

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.delete(":id", use: delete)
    }

    @Sendable func create(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(context: context)!
        var issues = IssueCollector()
        var role: APIKeyRole?
        var name = ""
        if let object = issues.object(body, .root, required: true) {
            issues.rejectUnknownFields(object, .root, known: ["role", "name"])
            if let r = issues.string(object["role"], JSONPath.root["role"], required: true) {
                role = APIKeyRole(rawValue: r)
                if role == nil { issues.add(JSONPath.root["role"], "must be \"admin\" or \"client\"") }
            }
            if let n = issues.string(object["name"], JSONPath.root["name"]) {
                if n.utf8.count > 200 { issues.add(JSONPath.root["name"], "must be at most 200 bytes") } else { name = n }
            }
        }
        guard issues.isEmpty, let role else { throw AviaryError.invalid(code: "invalid_key", issues: issues.issues) }
        let actor = context.apiKey?.id
        let (key, secret) = try await changes.createKey(role: role, name: name, by: .key(actor))
        var json = key.json.objectValue ?? [:]
        json["key"] = .string(secret)
        return Response.json(.object(json), status: .created, headers: [.location: "/v1/keys/\(key.id)", .cacheControl: "no-store"])
    }

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        Response.json(["keys": .array(try await repository.active().compactMap(\.object).map(\.json))])
    }

    @Sendable func delete(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard id.utf8.count <= 64 else { throw AviaryError.notFound("key does not exist") }
        let actor = context.apiKey?.id
        try await changes.revokeKey(id, by: .key(actor))
        return Response(status: .noContent)
    }
}
