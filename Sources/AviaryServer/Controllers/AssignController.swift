import AviaryCore
import AviaryPostgres
import Foundation
import HTTPTypes
import Hummingbird

/// `/v1/assign`: who sees what, from headers, cookies and query (GET) or an explicit context
/// (POST). Reads only the in-memory snapshot; exposures are queued, never written inline.
struct AssignController {
    let snapshots: SnapshotStore
    let exposures: ExposureRecorder
    let metrics: AviaryMetrics

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(use: assignAll)
        group.get(":key", use: assignOne)
        group.post(use: assignExplicit)
    }

    @Sendable func assignAll(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let read = AssignmentContextReader.read(request)
        let (snapshot, answer) = snapshots.prepared
        let assignments = Assigner.assignAll(read.context, snapshot: snapshot)
        exposures.record(assignments, context: read.context)
        metrics.countAssignments(assignments)
        return answer.response(assignments, context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: false)
    }

    @Sendable func assignOne(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.parameters.require("key")
        let (snapshot, answer) = snapshots.prepared
        guard let experiment = snapshot.experiment(key) else {
            throw AviaryError.notFound("experiment \"\(key.prefix(80))\" is not active (unknown, draft or archived)")
        }
        let read = AssignmentContextReader.read(request)
        let assignment = Assigner.assign(read.context, to: experiment, in: snapshot)
        exposures.record(CollectionOfOne(assignment), context: read.context)
        metrics.countAssignments(CollectionOfOne(assignment))
        let bodyless = request.uri.queryParameters.get("body") == "none"
        return answer.response([assignment], context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: bodyless)
    }

    @Sendable func assignExplicit(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(context: context)!
        var issues = IssueCollector()
        var assignmentContext = AssignmentContext()
        var keys: [String]?
        if let object = issues.object(body, .root, required: true) {
            issues.rejectUnknownFields(object, .root, known: ["context", "experiments"])
            if let c = issues.object(object["context"], JSONPath.root["context"], required: true) {
                assignmentContext = AssignmentContext(json: c, at: JSONPath.root["context"], issues: &issues)
            }
            if let list = issues.array(object["experiments"], JSONPath.root["experiments"]) {
                keys = list.enumerated().compactMap { issues.key($0.element, JSONPath.root["experiments"][$0.offset], required: true) }
            }
        }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        let (snapshot, answer) = snapshots.prepared
        var assignments: [Assignment]
        if let keys {
            assignments = []
            for key in keys {
                guard let e = snapshot.experiment(key) else { throw AviaryError.notFound("experiment \"\(key)\" is not active (unknown, draft or archived)") }
                assignments.append(Assigner.assign(assignmentContext, to: e, in: snapshot))
            }
        } else {
            assignments = Assigner.assignAll(assignmentContext, snapshot: snapshot)
        }
        exposures.record(assignments, context: assignmentContext)
        metrics.countAssignments(assignments)
        return answer.response(assignments, context: assignmentContext, mintedCookie: nil, bodyless: false)
    }
}
