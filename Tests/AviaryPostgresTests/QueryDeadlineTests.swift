import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

@testable import AviaryPostgres

/// A deadline ends every wait on PostgreSQL — a slow query, a lock held elsewhere, a pool with
/// no free connection — and leaves no query behind (docs/operations.md, "Deadlines"). Each
/// wait would end by itself later with an answer, so `Passed` shows the deadline ended it; the
/// times asserted are only far below the wait's own, so that a loaded machine does not fail them.
@Suite struct QueryDeadlineTests {
    /// Runs `body` under a deadline of `limit`; answers how long it took and what it threw.
    func timed(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async -> (Duration, (any Error)?) {
        let start = ContinuousClock.now
        do {
            try await QueryDeadline.within(limit, body)
            return (ContinuousClock.now - start, nil)
        } catch {
            return (ContinuousClock.now - start, error)
        }
    }

    @Test func slowQueriesEndAtTheDeadlineAndThePoolStillServes() async throws {
        try await TestDatabase.withMigrated { _, db in
            // Twice as many as the pool's four connections: a query left running would starve it.
            for _ in 0..<8 {
                let (took, error) = await timed(.milliseconds(200)) { try await db.execute("SELECT pg_sleep(30)") }
                #expect(error is QueryDeadline.Passed, "\(String(describing: error))")
                #expect(took < .seconds(15), "took \(took)")
            }
            let start = ContinuousClock.now
            let seven = try await QueryDeadline.within(.seconds(60)) { try await db.query("SELECT 7") { try await $0.value(Int.self) } }
            #expect(seven == 7)
            #expect(ContinuousClock.now - start < .seconds(15))
            // PostgreSQL ends the closed connections' queries too (client_connection_check_interval).
            var sleeping = 1
            for _ in 0..<100 where sleeping > 0 {
                try await Task.sleep(for: .milliseconds(200))
                sleeping = try await db.query("SELECT count(*)::int FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'") {
                    try await $0.value(Int.self) ?? 0
                }
            }
            #expect(sleeping == 0)
        }
    }

    @Test func aWaitForALockHeldElsewhereEndsAtTheDeadline() async throws {
        try await TestDatabase.withMigrated { url, db in
            try await TestDatabase.whileLocked("experiments", in: url, for: 3) {
                let (_, error) = await timed(.milliseconds(300)) { _ = try await db.experiments.list(status: nil, includeArchived: true) }
                #expect(error is QueryDeadline.Passed, "\(String(describing: error))")
            }
            #expect(try await db.experiments.list(status: nil, includeArchived: true).isEmpty)
        }
    }

    @Test func aWaitForAConnectionEndsAtTheDeadline() async throws {
        try await TestDatabase.withMigrated { _, db in
            // Every connection of the pool busy for ten seconds.
            let busy = (0..<4).map { _ in Task { try await db.execute("SELECT pg_sleep(10)") } }
            try await Task.sleep(for: .seconds(2))
            let (_, error) = await timed(.milliseconds(200)) { try await db.execute("SELECT 1") }
            #expect(error is QueryDeadline.Passed, "\(String(describing: error))")
            for task in busy { try await task.value }
        }
    }

    @Test func workThatFinishesAnswersAndDeadlinesNest() async throws {
        try await TestDatabase.withMigrated { _, db in
            let one = try await QueryDeadline.within(.seconds(60)) { try await db.query("SELECT 1") { try await $0.value(Int.self) } }
            #expect(one == 1)
            // The outer, shorter deadline ends a query under a longer inner one.
            let (took, error) = await timed(.milliseconds(200)) {
                try await QueryDeadline.within(.seconds(20)) { try await db.execute("SELECT pg_sleep(30)") }
            }
            #expect(error is QueryDeadline.Passed, "\(String(describing: error))")
            #expect(took < .seconds(15), "took \(took)")
            // A database error is thrown as itself.
            await #expect(throws: PSQLError.self) { try await QueryDeadline.within(.seconds(60)) { try await db.execute("SELECT 1/0") } }
        }
    }
}
