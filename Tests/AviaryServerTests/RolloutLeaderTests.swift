import AviaryTestSupport
import Foundation
import Testing

@testable import AviaryPostgres
@testable import AviaryServer

/// A rollout tick that cannot finish is cut at its deadline and the leader lock given up, so
/// that no server leads while waiting for ever (docs/operations.md, "Deadlines").
@Suite struct RolloutLeaderTests {
    /// The backend holding the leader lock (`AdvisoryLock.rolloutLeader`, 0x617669617279_2E72).
    func leaderBackend(_ db: AviaryDatabase) async throws -> Int? {
        try await db.query(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 1635150177 AND objid = 1920544370 AND granted"
        ) { try await $0.value(Int.self) }
    }

    func eventually(_ what: String, within limit: Duration = .seconds(15), _ check: () async throws -> Bool) async throws {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if try await check() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("not within \(limit): \(what)")
    }

    @Test func aTickThatCannotFinishGivesUpTheLead() async throws {
        try await TestDatabase.withMigrated { url, db in
            let reports = ReportSource(primary: db, replica: nil, maxLag: 5, logger: TestDatabase.logger)
            let feed = ConfigFeed(
                database: db, snapshots: SnapshotStore(), authenticator: KeyAuthenticator(), pollInterval: .seconds(5), logger: TestDatabase.logger)
            let changes = Changes(database: db, feed: feed, notifyHosts: nil)
            let leader = RolloutLeader(changes: changes, reports: reports, tick: .milliseconds(100), tickLimit: .milliseconds(400), logger: TestDatabase.logger)
            let running = Task { try await leader.run() }
            defer { running.cancel() }
            try await eventually("a leader") { try await leaderBackend(db) != nil }
            let first = try await leaderBackend(db)
            // A lock held elsewhere on the table every tick reads: the tick waits on it.
            try await TestDatabase.whileLocked("experiments", in: url, for: 8) {
                // Given up: the lock is free, or taken again on a new session.
                try await eventually("the stalled leader giving up its lock", within: .seconds(6)) {
                    let now = try await leaderBackend(db)
                    return now != first
                }
            }
            // Once the table is free, the server leads again.
            try await eventually("leading again", within: .seconds(10)) { try await leaderBackend(db) != nil }
        }
    }
}
