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
        let read = RequestContextReader.read(request)
        let (snapshot, headers) = snapshots.prepared
        let assignments = Assigner.assignAll(read.context, snapshot: snapshot)
        exposures.record(assignments, context: read.context)
        metrics.countAssignments(assignments)
        return Self.response(assignments, headers, context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: false)
    }

    @Sendable func assignOne(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.parameters.require("key")
        let (snapshot, headers) = snapshots.prepared
        guard let experiment = snapshot.experiment(key) else {
            throw AviaryError.notFound("experiment \"\(key.prefix(80))\" is not active (unknown, draft or archived)")
        }
        let read = RequestContextReader.read(request)
        let assignment = Assigner.assign(read.context, to: experiment, in: snapshot)
        exposures.record(CollectionOfOne(assignment), context: read.context)
        metrics.countAssignments(CollectionOfOne(assignment))
        let bodyless = request.uri.queryParameters.get("body") == "none"
        return Self.response([assignment], headers, context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: bodyless)
    }

    @Sendable func assignExplicit(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let body = try await request.decodeJSON(context: context)!
        var issues = IssueCollector()
        var assignmentContext = AssignmentContext()
        var keys: [String]?
        if let object = issues.object(body, .root, required: true) {
            issues.rejectUnknownFields(object, .root, known: ["context", "experiments"])
            if let c = issues.object(object["context"], JSONPath.root["context"], required: true) {
                assignmentContext = Self.context(from: c, at: JSONPath.root["context"], unitField: nil, issues: &issues)
            }
            if let list = issues.array(object["experiments"], JSONPath.root["experiments"]) {
                keys = list.enumerated().compactMap { issues.key($0.element, JSONPath.root["experiments"][$0.offset], required: true) }
            }
        }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
        let (snapshot, headers) = snapshots.prepared
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
        return Self.response(assignments, headers, context: assignmentContext, mintedCookie: nil, bodyless: false)
    }

    /// Reads an explicit context object: `user_id`, `anonymous_id`, and scalar attributes.
    /// `unitField` (OFREP's `targetingKey`) also fills the units when given.
    static func context(from object: [String: JSON], at path: JSONPath, unitField: String?, issues: inout IssueCollector) -> AssignmentContext {
        var context = AssignmentContext()
        if object.count > RequestContextReader.maxAttributes + 3 {
            issues.add(path, "at most \(RequestContextReader.maxAttributes) attributes")
            return context
        }
        for (name, value) in object {
            let p = path[name]
            switch (name, value) {
            case (_, .null): continue
            case ("user_id", _): context.userID = issues.string(value, p)
            case ("anonymous_id", _): context.anonymousID = issues.string(value, p)
            case (_, .string(let s)):
                guard s.utf8.count <= 4 * RequestContextReader.maxValueLength else {
                    issues.add(p, "is longer than \(4 * RequestContextReader.maxValueLength) bytes")
                    continue
                }
                context.attributes[name] = .string(s)
            case (_, .number(let n)): context.attributes[name] = .number(n)
            case (_, .bool(let b)): context.attributes[name] = .bool(b)
            default: issues.add(p, "must be a string, number or boolean, not \(value.typeName)")
            }
        }
        if let unitField, let key = context.attributes.removeValue(forKey: unitField) {
            context.userID = context.userID ?? key.text
            context.anonymousID = context.anonymousID ?? key.text
        }
        return context
    }

    /// Body and headers of an assignment (docs/api.md, "Assignment"): the assignments in JSON, `X-Aviary-Variant-<key>` per
    /// experiment and all of them as an RFC 8941 dictionary in `X-Aviary-Assignments`.
    static func response(
        _ assignments: [Assignment], _ prepared: AssignmentHeaders, context: AssignmentContext, mintedCookie: String?, bodyless: Bool
    ) -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(assignments.count + 5)
        headers[.cacheControl] = "no-store"
        if let mintedCookie { headers[.setCookie] = RequestContextReader.setCookie(mintedCookie) }
        var dictionary = ""
        for a in assignments {
            let position = a.experiment.position
            if let name = prepared.variantHeader[position] { headers.append(HTTPField(name: name, value: a.variantKey)) }
            if let members = prepared.dictionaryMember[position] {
                if !dictionary.isEmpty { dictionary += ", " }
                dictionary += members[a.variantIndex]
            }
        }
        if !dictionary.isEmpty { headers[.aviaryAssignments] = dictionary }
        if bodyless { return Response(status: .noContent, headers: headers) }

        var w = JSONWriter(capacity: 128 + assignments.count * 160)
        w.raw("{\"assignments\":{")
        for (i, a) in assignments.enumerated() {
            if i > 0 { w.raw(",") }
            let position = a.experiment.position
            w.raw(prepared.bodyPrefix[position])
            w.bool(a.inExperiment)
            w.raw(",\"reason\":")
            w.rawString(a.reason.description)
            w.raw(prepared.bodySuffix[position][a.variantIndex])
        }
        w.raw("},\"unit\":{\"anonymous_id\":")
        w.optionalString(context.anonymousID)
        w.raw(",\"user_id\":")
        w.optionalString(context.userID)
        w.raw("}}")
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: w.buffer))
    }
}
