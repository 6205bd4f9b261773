import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/experiments`: create, list, read, replace, archive, lifecycle and revision history.
struct ExperimentsController {
    let repository: ExperimentRepository
    /// Told of every rollback by hand (the rollout webhook).
    var rollbackHook: (@Sendable (Experiment) -> Void)?

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get(":key", use: get)
        group.put(":key", use: replace)
        group.delete(":key", use: archive)
        group.get(":key/revisions", use: revisions)
        group.post(":key/rollout/approve", use: approve)
        for action in LifecycleAction.allCases {
            group.post(RouterPath(stringLiteral: ":key/\(action.rawValue)"), use: { request, context in
                try await transition(action, request: request, context: context)
            })
        }
    }

    @Sendable func create(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(context: context)!
        let actor = context.apiKey?.id
        let experiment = try await DatabaseDeadline.run { try await repository.create(body, actor: actor) }
        return Response.json(experiment.json, status: .created, headers: Self.headers(experiment, location: true))
    }

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        var status: ExperimentStatus?
        var issues: [ValidationIssue] = []
        let query = request.uri.queryParameters
        if let raw = query.get("status") {
            status = ExperimentStatus(rawValue: raw)
            if status == nil {
                issues.append(.init(path: "status", message: "must be one of \(ExperimentStatus.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
        }
        let archived = query.get("archived")
        if let archived, archived != "true", archived != "false" { issues.append(.init(path: "archived", message: "must be true or false")) }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues) }
        let experiments = try await DatabaseDeadline.run { [status] in try await repository.list(status: status, includeArchived: archived == "true") }
        return Response.json(["experiments": .array(experiments.map(\.json))])
    }

    @Sendable func get(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let experiment = try await DatabaseDeadline.run { try await repository.get(key) }
        return Response.json(experiment.json, headers: Self.headers(experiment))
    }

    @Sendable func replace(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let ifMatch = try request.ifMatchRevision()
        let body = try await request.decodeJSON(context: context)!
        let actor = context.apiKey?.id
        let experiment = try await DatabaseDeadline.run { try await repository.replace(key, with: body, ifMatch: ifMatch, actor: actor) }
        return Response.json(experiment.json, headers: Self.headers(experiment))
    }

    @Sendable func archive(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let ifMatch = try request.ifMatchRevision()
        let actor = context.apiKey?.id
        let experiment = try await DatabaseDeadline.run { try await repository.archive(key, ifMatch: ifMatch, actor: actor) }
        return Response.json(experiment.json, headers: Self.headers(experiment))
    }

    @Sendable func revisions(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let revisions = try await DatabaseDeadline.run { try await repository.revisions(key) }
        return Response.json(["revisions": .array(revisions.map(\.json))])
    }

    func transition(_ action: LifecycleAction, request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let ifMatch = try request.ifMatchRevision()
        var winner: String?, reason: String?
        if let body = try await request.decodeJSON(context: context, optional: true) {
            var issues = IssueCollector()
            if let object = issues.object(body, .root, required: true) {
                issues.rejectUnknownFields(object, .root, known: action == .stop ? ["winner", "reason"] : ["reason"])
                winner = issues.key(object["winner"], JSONPath.root["winner"])
                reason = issues.string(object["reason"], JSONPath.root["reason"])
                if let r = reason, r.isEmpty || r.utf8.count > 1_000 {
                    issues.add(JSONPath.root["reason"], "must be 1 to 1,000 bytes")
                }
            }
            guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        }
        let actor = context.apiKey?.id
        let (chosen, why) = (winner, reason)
        let experiment = try await DatabaseDeadline.run {
            try await repository.transition(key, action: action, winner: chosen, reason: why, ifMatch: ifMatch, actor: actor)
        }
        if action == .rollback { rollbackHook?(experiment) }
        return Response.json(experiment.json, headers: Self.headers(experiment))
    }

    /// `POST /v1/experiments/{key}/rollout/approve`: passes the next approval gate.
    @Sendable func approve(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try Self.key(context)
        let actor = context.apiKey?.id
        let experiment = try await DatabaseDeadline.run { try await repository.approveRollout(key, actor: actor) }
        return Response.json(experiment.json, headers: Self.headers(experiment))
    }

    static func key(_ context: AviaryRequestContext) throws -> String {
        let key = try context.parameters.require("key")
        guard Key.isValid(key) else { throw AviaryError.notFound("experiment \"\(key.prefix(80))\" does not exist") }
        return key
    }

    static func headers(_ experiment: Experiment, location: Bool = false) -> HTTPFields {
        var fields: HTTPFields = [.eTag: "\"\(experiment.revision)\""]
        if location { fields[.location] = "/v1/experiments/\(experiment.key)" }
        return fields
    }
}
