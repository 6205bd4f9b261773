import AviaryCore
import Hummingbird

/// Bounds how long a request waits for PostgreSQL. When the database is down the connection
/// pool queues requests rather than failing them, so without a deadline an admin call would
/// hang; with it the caller gets `503 database_unavailable` and `Retry-After`.
enum DatabaseDeadline {
    static let requestLimit: Duration = .seconds(5)

    static func run<T: Sendable>(limit: Duration = requestLimit, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T.self) { group in
            group.addTask { try await operation() }
            group.addTask {
                try await Task.sleep(for: limit)
                throw APIError(
                    .serviceUnavailable, code: "database_unavailable", message: "the database did not answer in time; try again",
                    headers: [.retryAfter: "1"])
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
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
