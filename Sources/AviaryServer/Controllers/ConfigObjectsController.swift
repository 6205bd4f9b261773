import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/v1/cohorts` and `/v1/metrics` (docs/api.md, "Cohorts", "Metrics"): objects kept by key with
/// a revision — list, read, create or replace with `PUT`, change some fields with `PATCH` (a JSON
/// merge patch; `If-Match` optional for both), delete while unused.
struct ConfigObjectsController<Object: ConfigObject> {
    /// Reads; every write goes through `changes`.
    let store: ConfigObjectStore<Object>
    let changes: Changes
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
            let (object, outcome) = try await changes.put(store, key, body: body, ifMatch: ifMatch, by: .key(context.apiKey?.id))
            return Response.revisioned(object.json, revision: object.revision, createdAt: outcome == .created ? "\(path)/\(key)" : nil)
        }
        group.patch(":key") { request, context in
            let key = try context.existingKey(of: Object.kind)
            let ifMatch = try request.ifMatchRevision()
            let patch = try await request.decodeMergePatch(context: context)
            let object = try await changes.patch(store, key, patch: patch, ifMatch: ifMatch, by: .key(context.apiKey?.id))
            return Response.revisioned(object.json, revision: object.revision)
        }
        group.delete(":key") { _, context in
            let key = try context.existingKey(of: Object.kind)
            try await changes.delete(store, key, by: .key(context.apiKey?.id))
            return Response(status: .noContent)
        }
    }
}
