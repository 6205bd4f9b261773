import AviaryCore
import Foundation
import Hummingbird
import AviaryPostgres
import Logging

/// The one error type that reaches HTTP. Every response error has the shape of docs/api.md ("Errors")
/// `{"error": {"code", "message", "details": [{"path", "message"}]}}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var details: [ValidationIssue]
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, code: String, message: String, details: [ValidationIssue] = [], headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers
    }

    public var json: JSON {
        [
            "error": [
                "code": .string(code), "message": .string(message),
                "details": .array(details.map(Self.detail)),
            ]
        ]
    }

    /// A detail; paths into a batch (`[3].ts`) also carry the item's `index`.
    static func detail(_ issue: ValidationIssue) -> JSON {
        var object: [String: JSON] = ["path": .string(issue.path), "message": .string(issue.message)]
        if issue.path.hasPrefix("["), let close = issue.path.firstIndex(of: "]"),
            let index = Int(issue.path[issue.path.index(after: issue.path.startIndex)..<close])
        {
            object["index"] = .number(Double(index))
        }
        return .object(object)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response.json(json, status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func invalidJSON(_ reason: String) -> APIError {
        APIError(.badRequest, code: "invalid_json", message: "the body is not valid JSON: \(reason)")
    }

    static func invalidRequest(_ issues: [ValidationIssue]) -> APIError {
        APIError(.badRequest, code: "invalid_request", message: summary(issues), details: issues)
    }

    static func summary(_ issues: [ValidationIssue]) -> String { ValidationFailure.summary(issues) }

    /// Maps any error to its HTTP form; unknown errors become a 500 that reveals nothing.
    static func from(_ error: any Error, logger: Logger) -> APIError {
        switch error {
        case let e as APIError:
            return e
        case let e as AviaryError:
            return from(e)
        case let e as HTTPError:
            switch e.status {
            case .notFound: return APIError(.notFound, code: "not_found", message: "no such route")
            case .methodNotAllowed: return APIError(.methodNotAllowed, code: "method_not_allowed", message: "method not allowed on this route")
            case .contentTooLarge: return tooLarge
            default: return APIError(e.status, code: e.status.reasonPhrase.lowercased().replacingOccurrences(of: " ", with: "_"), message: e.body ?? e.status.reasonPhrase)
            }
        case let e where AviaryDatabase.isUnavailable(e):
            logger.error("database unavailable", metadata: ["error": "\(String(reflecting: e))"])
            return APIError(.serviceUnavailable, code: "database_unavailable", message: "the database is unavailable; try again", headers: [.retryAfter: "1"])
        default:
            logger.error("unexpected error", metadata: ["error": "\(String(reflecting: error))"])
            return APIError(.internalServerError, code: "internal", message: "an internal error occurred")
        }
    }

    static let tooLarge = APIError(.contentTooLarge, code: "payload_too_large", message: "request bodies are at most \(RequestLimits.maxBodyBytes) bytes")

    static func from(_ error: AviaryError) -> APIError {
        switch error {
        case .invalid(let code, let issues): APIError(.badRequest, code: code, message: summary(issues), details: issues)
        case .notFound(let m): APIError(.notFound, code: "not_found", message: m)
        case .conflict(let m, let issues): APIError(.conflict, code: "conflict", message: m, details: issues)
        case .illegalTransition(let m): APIError(.conflict, code: "illegal_transition", message: m)
        case .storedObjectUnreadable(let m): APIError(.conflict, code: "stored_object_unreadable", message: m)
        case .preconditionRequired(let m): APIError(.preconditionRequired, code: "precondition_required", message: m)
        case .preconditionFailed(let current):
            APIError(
                .preconditionFailed, code: "precondition_failed",
                message: "If-Match names a stale revision; the current revision is \(current)", headers: [.eTag: "\"\(current)\""])
        }
    }
}

/// Turns every error thrown below it, the router's own 404 included, into an `APIError` response.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            return try APIError.from(error, logger: context.logger).response(from: request, context: context)
        }
    }
}
