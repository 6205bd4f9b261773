import AviaryCore
import AviaryPostgres
import Hummingbird

/// Bounds how long a request waits for PostgreSQL (`QueryDeadline`, which background work uses
/// directly): when the database is down the connection pool queues requests rather than
/// failing them, and a query can wait on a lock or a server that stopped answering, so without
/// a deadline an admin call would hang; with it the caller gets `503 database_unavailable` and
/// `Retry-After`, and no query is left behind on a pooled connection.
enum DatabaseDeadline {
    static let requestLimit: Duration = .seconds(5)

    static func run<T: Sendable>(limit: Duration = requestLimit, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await QueryDeadline.within(limit, operation)
        } catch is QueryDeadline.Passed {
            throw timeout
        }
    }

    static var timeout: APIError {
        APIError(.serviceUnavailable, code: "database_unavailable", message: "the database did not answer in time; try again", headers: [.retryAfter: "1"])
    }
}

/// `DatabaseDeadline` for every route of a group whose answers wait on PostgreSQL, so that no
/// handler repeats it.
struct DatabaseDeadlineMiddleware<Context: RequestContext>: RouterMiddleware {
    var limit: Duration = DatabaseDeadline.requestLimit

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await withoutActuallyEscaping(next) { next in
            let handler = Handler(call: next)
            return try await DatabaseDeadline.run(limit: limit) { try await handler.call(request, context) }
        }
    }

    /// Hummingbird's `next` is neither escaping nor `Sendable`; it runs in the deadline's child
    /// task, which ends before `handle` returns, on this request's own values only.
    private struct Handler: @unchecked Sendable {
        let call: (Request, Context) async throws -> Response
    }
}
