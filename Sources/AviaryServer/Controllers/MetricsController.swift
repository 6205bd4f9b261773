import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/metrics`: metric definitions (SPEC 8).
struct MetricsController {
    let repository: MetricRepository

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get { _, _ in Response.json(["metrics": .array(try await DatabaseDeadline.run { try await repository.list() }.map(\.json))]) }
        group.get(":key") { _, context in
            let key = try Self.key(context)
            let metric = try await DatabaseDeadline.run { try await repository.get(key) }
            return Response.json(metric.json, headers: [.eTag: "\"\(metric.revision)\""])
        }
        group.put(":key") { request, context in
            let key = try context.parameters.require("key")
            let ifMatch = try request.ifMatchRevision()
            let body = try await request.decodeJSON(context: context)!
            let actor = context.apiKey?.id
            let (metric, outcome) = try await DatabaseDeadline.run { try await repository.put(key, body: body, ifMatch: ifMatch, actor: actor) }
            var headers: HTTPFields = [.eTag: "\"\(metric.revision)\""]
            if outcome == .created { headers[.location] = "/v1/metrics/\(key)" }
            return Response.json(metric.json, status: outcome == .created ? .created : .ok, headers: headers)
        }
        group.delete(":key") { _, context in
            let key = try Self.key(context)
            let actor = context.apiKey?.id
            try await DatabaseDeadline.run { try await repository.delete(key, actor: actor) }
            return Response(status: .noContent)
        }
    }

    static func key(_ context: AviaryRequestContext) throws -> String {
        let key = try context.parameters.require("key")
        guard Key.isValid(key) else { throw AviaryError.notFound("metric \"\(key.prefix(80))\" does not exist") }
        return key
    }
}
