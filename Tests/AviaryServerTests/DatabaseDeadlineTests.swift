import AviaryTestSupport
import Testing

@testable import AviaryPostgres
@testable import AviaryServer

/// A request's deadline (`QueryDeadline`) answers `503 database_unavailable` with
/// `Retry-After`; other errors pass as themselves.
@Suite struct DatabaseDeadlineTests {
    @Test func aPassedDeadlineIsA503() async throws {
        try await TestDatabase.withMigrated { _, db in
            let start = ContinuousClock.now
            await #expect {
                try await DatabaseDeadline.run(limit: .milliseconds(200)) { try await db.execute("SELECT pg_sleep(30)") }
            } throws: { error in
                let error = error as? APIError
                return error?.code == "database_unavailable" && error?.headers[.retryAfter] == "1"
            }
            #expect(ContinuousClock.now - start < .seconds(15))  // the query sleeps 30 s
            struct Other: Error {}
            await #expect(throws: Other.self) { try await DatabaseDeadline.run { throw Other() } }
        }
    }
}
