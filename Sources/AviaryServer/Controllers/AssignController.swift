import AviaryCore
import AviaryPostgres
import Foundation
import HTTPTypes
import Hummingbird
import RawStructuredFieldValues

/// `/v1/assign`: who sees what, from headers, cookies and query (GET) or an explicit context
/// (POST). Reads only the in-memory snapshot; exposures are queued, never written inline.
struct AssignController {
    let snapshots: SnapshotStore
    let exposures: ExposureRecorder

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(use: assignAll)
        group.get(":key", use: assignOne)
        group.post(use: assignExplicit)
    }

    @Sendable func assignAll(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let read = RequestContextReader.read(request)
        let snapshot = snapshots.snapshot
        let assignments = Assigner.assignAll(read.context, snapshot: snapshot)
        exposures.record(assignments, context: read.context)
        return Self.response(assignments, context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: false)
    }

    @Sendable func assignOne(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.parameters.require("key")
        let snapshot = snapshots.snapshot
        guard let experiment = snapshot.experiment(key) else {
            throw AviaryError.notFound("experiment \"\(key.prefix(80))\" is not active (unknown, draft or archived)")
        }
        let read = RequestContextReader.read(request)
        let assignment = Assigner.assign(read.context, to: experiment, in: snapshot)
        exposures.record(CollectionOfOne(assignment), context: read.context)
        let bodyless = request.uri.queryParameters.get("body") == "none"
        return Self.response([assignment], context: read.context, mintedCookie: read.mintedAnonymousID, bodyless: bodyless)
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
        let snapshot = snapshots.snapshot
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
        return Self.response(assignments, context: assignmentContext, mintedCookie: nil, bodyless: false)
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

    /// Body and headers of SPEC 6: the assignments in JSON, `X-Aviary-Variant-<key>` per
    /// experiment and all of them as an RFC 8941 dictionary in `X-Aviary-Assignments`.
    static func response(_ assignments: [Assignment], context: AssignmentContext, mintedCookie: String?, bodyless: Bool) -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(assignments.count + 5)
        headers[.cacheControl] = "no-store"
        if let mintedCookie { headers[.setCookie] = RequestContextReader.setCookie(mintedCookie) }
        var dictionary = OrderedMap<String, ItemOrInnerList>()
        for a in assignments {
            if let name = HTTPField.Name("X-Aviary-Variant-" + a.experiment.key) { headers.append(HTTPField(name: name, value: a.variantKey)) }
            if Self.isDictionaryKey(a.experiment.key) {
                let value: BareItem = Self.isToken(a.variantKey) ? .token(a.variantKey) : .string(a.variantKey)
                dictionary[a.experiment.key] = .item(Item(bareItem: value, parameters: [:]))
            }
        }
        var serializer = StructuredFieldValueSerializer()
        if !dictionary.isEmpty, let bytes = try? serializer.writeDictionaryFieldValue(dictionary) {
            headers[.aviaryAssignments] = String(decoding: bytes, as: UTF8.self)
        }
        if bodyless { return Response(status: .noContent, headers: headers) }

        var w = JSONWriter(capacity: 128 + assignments.count * 160)
        w.raw("{\"assignments\":{")
        for (i, a) in assignments.enumerated() {
            if i > 0 { w.raw(",") }
            w.rawString(a.experiment.key)
            w.raw(":{\"in_experiment\":")
            w.bool(a.inExperiment)
            w.raw(",\"reason\":")
            w.rawString(a.reason.description)
            w.raw(",\"value\":")
            w.raw(a.experiment.valueJSON[a.variantIndex])
            w.raw(",\"variant\":")
            w.rawString(a.variantKey)
            w.raw("}")
        }
        w.raw("},\"unit\":{\"anonymous_id\":")
        w.optionalString(context.anonymousID)
        w.raw(",\"user_id\":")
        w.optionalString(context.userID)
        w.raw("}}")
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: w.buffer))
    }

    /// RFC 8941 keys start with a lower-case letter or `*`; Aviary keys may start with a digit,
    /// and those experiments appear only in their `X-Aviary-Variant-<key>` header.
    static func isDictionaryKey(_ key: String) -> Bool {
        guard let first = key.utf8.first else { return false }
        return first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")
    }

    /// RFC 8941 tokens start with a letter; other variant keys are sent as strings.
    static func isToken(_ key: String) -> Bool {
        guard let first = key.utf8.first else { return false }
        return (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) || (first >= UInt8(ascii: "A") && first <= UInt8(ascii: "Z"))
    }
}
