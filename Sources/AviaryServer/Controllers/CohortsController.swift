import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/cohorts`: saved conditions that rules refer to.
struct CohortsController {
    let repository: CohortRepository

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(use: list)
        group.get(":key", use: get)
        group.put(":key", use: put)
        group.delete(":key", use: delete)
    }

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        Response.json(["cohorts": .array(try await DatabaseDeadline.run { try await repository.list() }.map(\.json))])
    }

    @Sendable func get(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context, forWrite: false)
        let cohort = try await DatabaseDeadline.run { try await repository.get(key) }
        return Response.json(cohort.json, headers: [.eTag: "\"\(cohort.revision)\""])
    }

    @Sendable func put(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context, forWrite: true)
        let ifMatch = try request.ifMatchRevision()
        let body = try await request.decodeJSON(context: context)!
        let actor = context.apiKey?.id
        let (cohort, outcome) = try await DatabaseDeadline.run { try await repository.put(key, body: body, ifMatch: ifMatch, actor: actor) }
        var headers: HTTPFields = [.eTag: "\"\(cohort.revision)\""]
        if outcome == .created { headers[.location] = "/v1/cohorts/\(key)" }
        return Response.json(cohort.json, status: outcome == .created ? .created : .ok, headers: headers)
    }

    @Sendable func delete(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context, forWrite: false)
        let actor = context.apiKey?.id
        try await DatabaseDeadline.run { try await repository.delete(key, actor: actor) }
        return Response(status: .noContent)
    }

    /// On a write an invalid key is a validation error; on a read it simply does not exist.
    static func key(_ context: AviaryRequestContext, forWrite: Bool) throws -> String {
        let key = try context.parameters.require("key")
        guard Key.isValid(key) else {
            if forWrite {
                throw AviaryError.invalid(
                    code: "invalid_cohort",
                    issues: [ValidationIssue(path: "key", message: "\"\(key.prefix(80))\" is not a valid key (lower-case letters, digits, '_' and '-', 1 to 63 characters, starting with a letter or digit)")])
            }
            throw AviaryError.notFound("cohort \"\(key.prefix(80))\" does not exist")
        }
        return key
    }
}
