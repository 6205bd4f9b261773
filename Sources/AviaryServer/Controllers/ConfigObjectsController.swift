import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/cohorts` and `/v1/metrics` (docs/api.md, "Cohorts", "Metrics"): objects kept by key with
/// a revision — list, read, create or replace with `PUT` (`If-Match` optional), delete while
/// unused.
struct ConfigObjectsController<Object: ConfigObject> {
    let store: ConfigObjectStore<Object>
    /// Where the group is mounted, for `Location`: `/v1/cohorts`.
    let path: String
    /// The list's field: `cohorts`.
    let listField: String

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get { _, _ in
            Response.json([listField: .array(try await store.list().map(\.json))])
        }
        group.get(":key") { _, context in
            let key = try context.existingKey(of: Object.kind)
            let object = try await store.get(key)
            return Response.revisioned(object.json, revision: object.revision)
        }
        group.put(":key") { request, context in
            // An invalid key is the body's validation error (path `key`), not a 404.
            let key = try context.parameters.require("key")
            let ifMatch = try request.ifMatchRevision()
            let body = try await request.decodeJSON(context: context)!
            let (object, outcome) = try await store.put(key, body: body, ifMatch: ifMatch, actor: context.apiKey?.id)
            return Response.revisioned(object.json, revision: object.revision, createdAt: outcome == .created ? "\(path)/\(key)" : nil)
        }
        group.delete(":key") { _, context in
            let key = try context.existingKey(of: Object.kind)
            try await store.delete(key, actor: context.apiKey?.id)
            return Response(status: .noContent)
        }
    }
}
