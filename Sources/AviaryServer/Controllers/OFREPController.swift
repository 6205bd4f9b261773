import AviaryCore
import AviaryPostgres
import Crypto
import Foundation
import HTTPTypes
import Hummingbird

/// The OpenFeature Remote Evaluation Protocol (OFREP v0.3): every active experiment is a flag
/// whose value is the served variant's value. `targetingKey` is the experiment's unit; other
/// context fields are attributes.
struct OFREPController {
    let snapshots: SnapshotStore
    let exposures: ExposureRecorder
    let metrics: AviaryMetrics

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post("flags/:key", use: evaluateOne)
        group.post("flags", use: evaluateAll)
    }

    struct Failure: Error {
        var status: HTTPResponse.Status
        var code: String
        var details: String
    }

    @Sendable func evaluateOne(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let key = try context.parameters.require("key")
        let evaluationContext: AssignmentContext
        do {
            evaluationContext = try await Self.readContext(request)
        } catch let failure as Failure {
            return Self.json(["key": .string(key), "errorCode": .string(failure.code), "errorDetails": .string(failure.details)], status: failure.status)
        }
        let snapshot = snapshots.snapshot
        guard let experiment = snapshot.experiment(key) else {
            return Self.json(
                ["key": .string(key), "errorCode": "FLAG_NOT_FOUND", "errorDetails": .string("flag \"\(key.prefix(80))\" is not active (unknown, draft or archived)")],
                status: .notFound)
        }
        let result = evaluate(experiment, evaluationContext, snapshot)
        return Self.json(result, status: result["errorCode"] == nil ? .ok : .badRequest)
    }

    @Sendable func evaluateAll(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let evaluationContext: AssignmentContext
        let canonicalContext: String
        do {
            evaluationContext = try await Self.readContext(request)
            canonicalContext = evaluationContext.canonicalDescription
        } catch let failure as Failure {
            return Self.json(["errorCode": .string(failure.code), "errorDetails": .string(failure.details)], status: failure.status)
        }
        let snapshot = snapshots.snapshot
        // The answer is a function of the configuration and the context, so the pair names it.
        let digest = SHA256.hash(data: Array("\(snapshot.revision)\n\(canonicalContext)".utf8))
        let etag = "\"" + digest.prefix(16).hexString + "\""
        if let match = request.headers[.ifNoneMatch], Self.matches(match, etag) {
            return Response(status: .notModified, headers: [.eTag: etag, .cacheControl: "no-cache"])
        }
        let flags = snapshot.experiments.map { JSON.object(evaluate($0, evaluationContext, snapshot)) }
        var response = Self.json(["flags": .array(flags), "metadata": [:]], status: .ok)
        response.headers[.eTag] = etag
        response.headers[.cacheControl] = "no-cache"
        return response
    }

    func evaluate(_ experiment: CompiledExperiment, _ context: AssignmentContext, _ snapshot: ConfigSnapshot) -> [String: JSON] {
        let assignment = Assigner.assign(context, to: experiment, in: snapshot)
        if assignment.reason == .noUnit {
            return [
                "key": .string(experiment.key), "errorCode": "TARGETING_KEY_MISSING",
                "errorDetails": .string("flag \"\(experiment.key)\" is assigned by \(experiment.unit.rawValue): send it as targetingKey"),
            ]
        }
        exposures.record(CollectionOfOne(assignment), context: context)
        metrics.countAssignments(CollectionOfOne(assignment))
        var result: [String: JSON] = [
            "key": .string(experiment.key), "reason": .string(Self.reason(assignment)), "variant": .string(assignment.variantKey),
            "metadata": ["aviaryReason": .string(assignment.reason.description), "inExperiment": .bool(assignment.inExperiment)],
        ]
        // A null value means "use the code default", which OFREP says by leaving value out.
        if !assignment.variant.value.isNull { result["value"] = assignment.variant.value }
        return result
    }

    /// Aviary's reasons in OpenFeature's words.
    static func reason(_ a: Assignment) -> String {
        switch a.reason {
        case .rule:
            guard let rule = a.rule else { return "TARGETING_MATCH" }
            if rule.isSplit { return "SPLIT" }
            return rule.when == nil ? "STATIC" : "TARGETING_MATCH"
        case .winner: return "STATIC"
        case .notRunning: return "DISABLED"
        case .noRuleMatched, .traffic, .layer, .optOut, .noUnit: return "DEFAULT"
        }
    }

    static func readContext(_ request: Request) async throws -> AssignmentContext {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: RequestLimits.maxBodyBytes)
        } catch {
            throw Failure(status: .contentTooLarge, code: "PARSE_ERROR", details: "request bodies are at most \(RequestLimits.maxBodyBytes) bytes")
        }
        if buffer.readableBytes == 0 { return AssignmentContext() }
        // OFREP sends JSON; a body of another type is not read as if it were.
        guard let type = request.headers[.contentType], Request.isJSON(type) else {
            throw Failure(status: .badRequest, code: "PARSE_ERROR", details: "send the body as application/json, not \(request.sentContentType)")
        }
        let body: JSON
        do {
            body = try JSON.parse(buffer.readableBytesView)
        } catch {
            // Text PostgreSQL cannot hold is a context OFREP's clients can correct, not a parse error.
            if case .unstorable = error { throw Failure(status: .badRequest, code: "INVALID_CONTEXT", details: error.issue().description) }
            throw Failure(status: .badRequest, code: "PARSE_ERROR", details: "the body is not valid JSON: \(error.reason)")
        }
        guard case .object(let object) = body else {
            throw Failure(status: .badRequest, code: "PARSE_ERROR", details: "the body must be an object {\"context\": {…}}")
        }
        guard let raw = object["context"], !raw.isNull else { return AssignmentContext() }
        guard case .object(let fields) = raw else {
            throw Failure(status: .badRequest, code: "INVALID_CONTEXT", details: "context must be an object")
        }
        var issues = IssueCollector()
        let context = AssignmentContext(json: fields, at: JSONPath.root["context"], unitField: "targetingKey", issues: &issues)
        guard issues.isEmpty else {
            throw Failure(status: .badRequest, code: "INVALID_CONTEXT", details: issues.issues.map(\.description).joined(separator: "; "))
        }
        return context
    }

    static func matches(_ ifNoneMatch: String, _ etag: String) -> Bool {
        ifNoneMatch.split(separator: ",").contains { candidate in
            var c = candidate.trimmedOWS
            if c == "*" { return true }
            if c.hasPrefix("W/") { c.removeFirst(2) }
            return c == etag
        }
    }

    static func json(_ object: [String: JSON], status: HTTPResponse.Status) -> Response {
        Response.json(.object(object), status: status)
    }
}

extension AssignmentContext {
    /// A stable text form of the context, for ETags.
    var canonicalDescription: String {
        var parts = ["u=\(userID ?? "")", "a=\(anonymousID ?? "")"]
        for (k, v) in attributes.sorted(by: { $0.key < $1.key }) { parts.append("\(k)=\(v.json.canonicalString())") }
        return parts.joined(separator: "\u{0}")
    }
}
