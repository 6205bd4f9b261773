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
        let assignments: [Assignment]
        let selected = try Self.selection(request, in: snapshot)
        if let selected {
            assignments = selected.map { Assigner.assign(read.context, to: $0, in: snapshot) }
        } else {
            assignments = Assigner.assignAll(read.context, snapshot: snapshot)
        }
        exposures.record(assignments, context: read.context)
        metrics.countAssignments(assignments)
        return answer.response(
            assignments, context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: false, headersWithinBudget: selected == nil)
    }

    /// The experiments `?experiments=a,b` selects (the parameter may repeat), in order and once
    /// each; nil when the request selects none. A name that is not an active experiment is a
    /// 400 with its path, as a typo anywhere else is.
    static func selection(_ request: Request, in snapshot: ConfigSnapshot) throws -> [CompiledExperiment]? {
        let values = request.uri.queryParameters.getAll("experiments")
        guard !values.isEmpty else { return nil }
        let names = values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map(String.init)
        return try resolve(names, path: { JSONPath.root["experiments"][$0] }, in: snapshot)
    }

    /// `names` as active experiments, once each in their order; every name that is none is an
    /// issue at `path(index)` (400).
    static func resolve(_ names: [String], path: (Int) -> JSONPath, in snapshot: ConfigSnapshot) throws -> [CompiledExperiment] {
        var issues = IssueCollector()
        var experiments: [CompiledExperiment] = []
        var seen = Set<String>()
        for (index, name) in names.enumerated() {
            guard let experiment = snapshot.experiment(name) else {
                let shown = name.isEmpty ? "an empty name" : "\"\(name.prefix(80))\""
                issues.add(path(index), "\(shown) is not an active experiment (unknown, draft or archived)")
                continue
            }
            if seen.insert(name).inserted { experiments.append(experiment) }
        }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        return experiments
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
        let (snapshot, answer) = snapshots.prepared
        let assignments: [Assignment]
        if let keys {
            assignments = try Self.resolve(keys, path: { JSONPath.root["experiments"][$0] }, in: snapshot).map {
                Assigner.assign(assignmentContext, to: $0, in: snapshot)
            }
        } else {
            assignments = Assigner.assignAll(assignmentContext, snapshot: snapshot)
        }
        exposures.record(assignments, context: assignmentContext)
        metrics.countAssignments(assignments)
        return answer.response(assignments, context: assignmentContext, mintedCookie: nil, bodyless: false, headersWithinBudget: keys == nil)
    }
}
