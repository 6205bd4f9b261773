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
        let read = try AssignmentContextReader.read(request)
        // `?experiments=a,b` (the parameter may repeat) selects; without it, every experiment.
        let values = request.uri.queryParameters.getAll("experiments")
        let selected = values.isEmpty ? nil : values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map(String.init)
        return try respond(read.context, selecting: selected, mintedCookie: read.mintedAnonymousID)
    }

    /// The answer for the experiments `names` selects — once each, in their order; a name that
    /// is not an active experiment is a 400 at `experiments[i]`, as a typo anywhere else is — or
    /// for every experiment when `names` is nil, its headers then within their budget.
    func respond(_ context: AssignmentContext, selecting names: [String]?, mintedCookie: String?) throws -> Response {
        let (snapshot, answer) = snapshots.prepared
        var assignments: [Assignment] = []
        if let names {
            var issues = IssueCollector()
            var seen = Set<String>()
            for (index, name) in names.enumerated() {
                guard let experiment = snapshot.experiment(name) else {
                    let shown = name.isEmpty ? "an empty name" : "\"\(name.prefix(80))\""
                    issues.add(JSONPath.root["experiments"][index], "\(shown) is not an active experiment (unknown, draft or archived)")
                    continue
                }
                if seen.insert(name).inserted { assignments.append(Assigner.assign(context, to: experiment, in: snapshot)) }
            }
            guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        } else {
            assignments = Assigner.assignAll(context, snapshot: snapshot)
        }
        exposures.record(assignments, context: context)
        metrics.countAssignments(assignments)
        return answer.response(assignments, context: context, mintedCookie: mintedCookie, bodyless: false, headersWithinBudget: names == nil)
    }

    @Sendable func assignOne(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.parameters.require("key")
        let (snapshot, answer) = snapshots.prepared
        guard let experiment = snapshot.experiment(key) else {
            throw AviaryError.notFound("experiment \"\(key.prefix(80))\" is not active (unknown, draft or archived)")
        }
        let read = try AssignmentContextReader.read(request)
        let assignment = Assigner.assign(read.context, to: experiment, in: snapshot)
        exposures.record(CollectionOfOne(assignment), context: read.context)
        metrics.countAssignments(CollectionOfOne(assignment))
        let bodyless = request.uri.queryParameters.get("body") == "none"
        return answer.response([assignment], context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: bodyless, headersWithinBudget: false)
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
        return try respond(assignmentContext, selecting: keys, mintedCookie: nil)
    }
}
