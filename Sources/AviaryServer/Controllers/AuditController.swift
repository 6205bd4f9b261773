import AviaryCore
import AviaryPostgres
import Hummingbird

/// `GET /v1/audit[?experiment=&limit=&before=]`: newest first; `next_before` pages further back.
struct AuditController {
    let repository: AuditRepository

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(use: list)
    }

    @Sendable func list(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var issues: [ValidationIssue] = []
        let experiment = query.get("experiment")
        if let experiment, !Key.isValid(experiment) { issues.append(.init(path: "experiment", message: "is not a valid key")) }
        var limit = 100
        if let raw = query.get("limit") {
            if let n = Int(raw), (1...1000).contains(n) { limit = n } else { issues.append(.init(path: "limit", message: "must be a whole number from 1 to 1000")) }
        }
        var before: Int64?
        if let raw = query.get("before") {
            if let n = Int64(raw), n > 0 { before = n } else { issues.append(.init(path: "before", message: "must be an entry id")) }
        }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues) }
        // One more than asked for says whether another page exists: `next_before` is null on the
        // last page, even when it holds exactly `limit` entries.
        var entries = try await repository.list(experiment: experiment, before: before, limit: limit + 1)
        let more = entries.count > limit
        entries = Array(entries.prefix(limit))
        let next: JSON = more ? entries.last.map { .number(Double($0.id)) } ?? .null : .null
        return Response.json(["entries": .array(entries.map(\.json)), "next_before": next])
    }
}
