import AviaryCore
import Hummingbird
import Synchronization

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
                throw timeout
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// For read-only probes (readiness, the replica's lag, the rollout gauges): the answer of
    /// `operation`, or the deadline's error at `limit` *without waiting for it*. `run` is
    /// structured, so it returns only once its cancelled query has ended; a query on a
    /// connection the database has just cut can take longer than that to notice, and `/readyz`
    /// then answered nothing for over 10 s instead of `503` within 2. Here the query is left to
    /// end on its own, cancelled; only reads may be left so, and writes that are safe to repeat
    /// and are repeated (the exposure flush), never a write a client is told failed.
    static func probe<T: Sendable>(limit: Duration, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let outcome = FirstOutcome<T>()
        let work = Task {
            do { outcome.settle(.success(try await operation())) } catch { outcome.settle(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            outcome.settle(.failure(timeout))
        }
        defer {
            work.cancel()
            timer.cancel()
        }
        return try await withTaskCancellationHandler {
            try await outcome.value
        } onCancel: {
            outcome.settle(.failure(CancellationError()))
        }
    }

    static var timeout: APIError {
        APIError(.serviceUnavailable, code: "database_unavailable", message: "the database did not answer in time; try again", headers: [.retryAfter: "1"])
    }
}

/// The first of several racing outcomes, handed to one waiter; later ones are dropped.
private final class FirstOutcome<T: Sendable>: Sendable {
    private let state = Mutex<(result: Result<T, any Error>?, waiter: CheckedContinuation<T, any Error>?)>((nil, nil))

    func settle(_ result: Result<T, any Error>) {
        let waiter: CheckedContinuation<T, any Error>? = state.withLock { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    var value: T {
        get async throws {
            try await withCheckedThrowingContinuation { continuation in
                let settled: Result<T, any Error>? = state.withLock { state in
                    if state.result == nil { state.waiter = continuation }
                    return state.result
                }
                if let settled { continuation.resume(with: settled) }
            }
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
