import Atomics
import AviaryCore
import AviaryPostgres
import Hummingbird

/// `POST /v1/events`: a JSON array or NDJSON of at most 1000 events. The whole batch is checked
/// first; `200 {"accepted", "duplicates"}` only once it is committed; `503` with `Retry-After`
/// when the database is down or too many batches are already being written — never a silent drop.
struct EventsController {
    let repository: EventRepository
    /// Batches being read, checked or written now, across requests.
    let inFlight = ManagedAtomic<Int>(0)
    let maxInFlight: Int
    let metrics: AviaryMetrics

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.post(use: ingest)
    }

    @Sendable func ingest(_ request: Request, context: AviaryRequestContext) async throws -> Response {
        let format: EventValidator.Format
        switch request.headers[.contentType].map(Request.mediaType) {
        case "application/x-ndjson", "application/jsonl", "application/jsonlines", "application/x-jsonlines": format = .ndjson
        case let media? where Request.isJSON(media): format = .jsonArray
        default:
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type",
                message: "send events as application/json (an array) or application/x-ndjson (one event per line)")
        }
        // The slot is taken before the body is read: a refused batch costs no parsing, so an
        // overload does not steal CPU from the batches being written.
        guard inFlight.loadThenWrappingIncrement(ordering: .acquiring) < maxInFlight else {
            inFlight.wrappingDecrement(ordering: .releasing)
            throw APIError(
                .serviceUnavailable, code: "overloaded", message: "too many event batches are being written; retry shortly",
                headers: [.retryAfter: "1"])
        }
        defer { inFlight.wrappingDecrement(ordering: .releasing) }
        let buffer = try await request.readBody(upTo: RequestLimits.maxBodyBytes)
        let items: [JSON]
        switch EventValidator.split(buffer.readableBytesView, format: format) {
        case .success(let parsed): items = parsed
        case .failure(let failure):
            // Well-formed JSON with a string PostgreSQL cannot store is a bad event, not bad JSON.
            let unstorable = failure.issues.allSatisfy { $0.message == StorableText.nulProblem }
            throw APIError(
                .badRequest, code: unstorable ? "invalid_events" : "invalid_json",
                message: (unstorable ? "nothing was stored: " : "") + APIError.summary(failure.issues), details: failure.issues)
        }
        let events: [Event]
        switch EventValidator.validate(items) {
        case .success(let valid): events = valid
        case .failure(let failure):
            throw APIError(.badRequest, code: "invalid_events", message: "nothing was stored: " + APIError.summary(failure.issues), details: failure.issues)
        }
        let (accepted, duplicates) = try await DatabaseDeadline.run { try await repository.insert(events) }
        metrics.recordEvents(accepted)
        return Response.json(["accepted": .number(Double(accepted)), "duplicates": .number(Double(duplicates))])
    }
}
