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
