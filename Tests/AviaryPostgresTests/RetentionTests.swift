import AviaryCore
import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

@testable import AviaryPostgres

/// Event retention (docs/operations.md, "Retention") on a real database: whole monthly
/// partitions past the cutoff are dropped and audited, the current month and the default
/// partition never; report states are cleared, and reports afterwards equal a recomputation
/// over the events left.
@Suite struct RetentionTests {
    static let experiment = ReportStateTests.experiment
    static let metrics = [Metric(key: "messages", kind: .count, event: "message"), Metric(key: "spend", kind: .sum, event: "purchase")]

    static func partitions(_ db: AviaryDatabase) async throws -> [String] {
        try await db.client.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1",
            logger: db.logger
        ).values(String.self)
    }

    @Test func oldMonthsAreDroppedAndReportsFollowWhatIsLeft() async throws {
        try await TestDatabase.withMigrated { _, db in
            _ = try await db.experiments.execute(.create(.object(Self.experiment.json)), key: Self.experiment.key, actor: nil)
            let now = Date()
            let old = now.addingTimeInterval(-200 * 86_400)
            try await db.events.ensurePartitions(around: old, monthsAhead: 0)
            try await db.events.ensurePartitions(around: now, monthsAhead: 1)
            let before = try await Self.partitions(db)
            func name(_ date: Date) -> String {
                let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
                return String(format: "events_%04d_%02d", c.year!, c.month!)
            }
            #expect(before.contains(name(old)) && before.contains(name(now)) && before.contains("events_default"))

            // Units exposed long ago, with events then and now.
            for i in 0..<6 {
                let unit = "u\(i)"
                try await db.exposures.record([Exposure(experiment: Self.experiment.key, unit: unit, variant: i % 2 == 0 ? "a" : "b", at: old)])
                for (ts, count) in [(old.addingTimeInterval(3600), 3), (now.addingTimeInterval(-60), i)] {
                    _ = try await db.events.insert((0..<count).map { _ in
                        Event(id: UUID(), type: "message", userID: unit, anonymousID: nil, ts: ts, value: 1, experiment: nil, variant: nil)
                    } + [Event(id: UUID(), type: "purchase", userID: unit, anonymousID: nil, ts: ts, value: Double(i), experiment: nil, variant: nil)])
                }
            }
            try await Task.sleep(for: .milliseconds(1_200))
            _ = try await db.reports.refreshState(experiment: Self.experiment, metrics: Self.metrics)
            let full = try await db.reports.aggregate(experiment: Self.experiment, metrics: Self.metrics, query: ReportQuery(), readsState: false)
            let allEvents: Int = full.groups.map(\.events).reduce(0, +)
            let sent: Int = 6 * 4 + (1...6).reduce(0, +)
            #expect(allEvents == sent)

            let dropped = try await db.events.dropPartitions(endingBefore: now.addingTimeInterval(-30 * 86_400), retentionDays: 30)
            #expect(dropped == [name(old)])
            let after = try await Self.partitions(db)
            #expect(!after.contains(name(old)) && after.contains(name(now)) && after.contains("events_default"))
            // Nothing more to drop; a retention of a day never reaches the current month.
            #expect(try await db.events.dropPartitions(endingBefore: now.addingTimeInterval(-86_400), retentionDays: 1).isEmpty)

            let audit = try await db.client.query(
                "SELECT target_key, after->>'retention_days' FROM audit_log WHERE action = 'event_partition.drop'", logger: db.logger
            ).decode((String, String).self).reduce(into: [(String, String)]()) { $0.append($1) }
            #expect(audit.map(\.0) == [name(old)] && audit.map(\.1) == ["30"])

            // The state is gone; the report from every event and the rebuilt state both count
            // only what is left: this month's i messages and one purchase of each unit.
            let stateless = try await db.reports.aggregate(experiment: Self.experiment, metrics: Self.metrics, query: ReportQuery())
            #expect(!stateless.fromState)
            #expect(try await db.reports.refreshState(experiment: Self.experiment, metrics: Self.metrics) == .rebuilt(units: 6))
            let rebuilt = try await db.reports.aggregate(experiment: Self.experiment, metrics: Self.metrics, query: ReportQuery())
            #expect(rebuilt.fromState)
            for aggregates in [stateless, rebuilt] {
                let byVariant = Dictionary(uniqueKeysWithValues: aggregates.groups.map { ($0.key.variant, $0) })
                for (variant, units) in [("a", [0, 2, 4]), ("b", [1, 3, 5])] {
                    let group = try #require(byVariant[variant])
                    let left: Int = units.reduce(0, +) + units.count
                    let mean = Double(units.reduce(0, +)) / 3
                    #expect(group.events == left)
                    let messages = try #require(group.metrics["messages"])
                    #expect(messages.n == 3)
                    #expect(abs((messages.mean ?? -1) - mean) < 1e-12)
                    let spend = try #require(group.metrics["spend"])
                    #expect(abs((spend.mean ?? -1) - mean) < 1e-12)
                }
            }
        }
    }
}
