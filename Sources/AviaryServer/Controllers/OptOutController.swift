import AviaryCore
import AviaryPostgres
import Hummingbird

/// `POST /v1/opt-out` leaves, `DELETE /v1/opt-out` rejoins, every experiment that allows
/// opting out. The units come from the body (`{"user_id", "anonymous_id"}`) or, without a
/// body, from the request as `/v1/assign` reads it. Replicas serve the change within a second.
struct OptOutController {
    let changes: Changes

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post { request, context in try await change(request, context: context, optOut: true) }
        group.delete { request, context in try await change(request, context: context, optOut: false) }
    }

    func change(_ request: Request, context: AviaryRequestContext, optOut: Bool) async throws -> Response {
        var units: [String] = []
        if let body = try await request.decodeJSON(context: context, optional: true) {
            var issues = IssueCollector()
            if let object = issues.object(body, .root, required: true) {
                issues.rejectUnknownFields(object, .root, known: ["user_id", "anonymous_id"])
                for field in ["user_id", "anonymous_id"] {
                    if let id = issues.string(object[field], JSONPath.root[field]) {
                        if id.isEmpty || id.utf8.count > AssignmentContextReader.maxValueLength {
                            issues.add(JSONPath.root[field], "must be 1 to \(AssignmentContextReader.maxValueLength) bytes")
                        } else {
                            units.append(id)
                        }
                    }
                }
            }
            guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        } else {
            let read = try AssignmentContextReader.read(request)
            if let user = read.context.userID { units.append(user) }
            if read.mintedAnonymousID == nil, let anonymous = read.context.anonymousID { units.append(anonymous) }
        }
        guard !units.isEmpty else {
            throw APIError.invalidRequest([
                ValidationIssue(path: "", message: "name a unit: a body {\"user_id\"} or {\"anonymous_id\"}, X-Aviary-User, or the aviary_id cookie")
            ])
        }
        try await changes.optOut(optOut, units: units)
        return Response.json(["opted_out": .bool(optOut), "units": .array(units.map(JSON.string))], headers: [.cacheControl: "no-store"])
    }
}
