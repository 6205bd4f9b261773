import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/experiments`: create, list, read, replace, patch, archive, lifecycle and revision history.
struct ExperimentsController {
    /// Reads; every write goes through `changes`.
    let repository: ExperimentRepository
    let notices: NoticeOutbox
    let changes: Changes

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post(use: create)
        group.get(use: list)
        group.get(":key", use: get)
        group.put(":key", use: replace)
        group.patch(":key", use: patch)
        group.delete(":key", use: archive)
        group.get(":key/revisions", use: revisions)
        group.get(":key/notices", use: listNotices)
        group.post(":key/rollout/approve", use: approve)
        for action in LifecycleAction.allCases {
            group.post(RouterPath(stringLiteral: ":key/\(action.rawValue)"), use: { request, context in
                try await transition(action, request: request, context: context)
            })
        }
    }

    @Sendable func create(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(context: context)!
        let experiment = try await execute(.create(body), key: body["key"]?.stringValue ?? "", context)
        return Response.revisioned(experiment.json, revision: experiment.revision, createdAt: "/v1/experiments/\(experiment.key)")
    }

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        var issues = IssueCollector()
        let query = request.uri.queryParameters
        var status: ExperimentStatus?
        if let raw = query.get("status") { status = issues.choice(raw, JSONPath.root["status"]) }
        let archived = query.get("archived")
        if let archived, archived != "true", archived != "false" { issues.add(JSONPath.root["archived"], "must be true or false") }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        let experiments = try await repository.list(status: status, includeArchived: archived == "true")
        return Response.json(["experiments": .array(experiments.map(\.json))])
    }

    @Sendable func get(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let experiment = try await repository.get(key)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    @Sendable func replace(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let ifMatch = try request.ifMatchRevision()
        let body = try await request.decodeJSON(context: context)!
        let experiment = try await execute(.replace(body, ifMatch: ifMatch), key: key, context)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    /// `PATCH`: a JSON merge patch of the definition, with `If-Match` as for `PUT`.
    @Sendable func patch(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let ifMatch = try request.ifMatchRevision()
        let patch = try await request.decodeMergePatch(context: context)
        let experiment = try await execute(.patch(patch, ifMatch: ifMatch), key: key, context)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    @Sendable func archive(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let ifMatch = try request.ifMatchRevision()
        let experiment = try await execute(.archive(ifMatch: ifMatch), key: key, context)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    @Sendable func revisions(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let revisions = try await repository.revisions(key)
        return Response.json(["revisions": .array(revisions.map(\.json))])
    }

    func transition(_ action: LifecycleAction, request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
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
        let experiment = try await execute(.lifecycle(action, winner: winner, reason: reason, ifMatch: ifMatch), key: key, context)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    /// `GET /v1/experiments/{key}/notices`: the rollout notices of the experiment, oldest first,
    /// with how their delivery stands.
    @Sendable func listNotices(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        try await repository.requireExisting(key)
        return Response.json(["notices": .array(try await notices.list(experiment: key))])
    }

    /// `POST /v1/experiments/{key}/rollout/approve`: passes the next approval gate.
    @Sendable func approve(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.existingKey(of: "experiment")
        let experiment = try await execute(.approveRollout, key: key, context)
        return Response.revisioned(experiment.json, revision: experiment.revision)
    }

    /// Runs a command as the request's key; every command from HTTP either changes the
    /// experiment or throws.
    func execute(_ command: ExperimentCommand, key: String, _ context: AviaryRequestContext) async throws -> Experiment {
        try await changes.experiment(command, key: key, by: .key(context.apiKey?.id))
    }
}
