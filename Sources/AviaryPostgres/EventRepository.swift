import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Outcome events: one multi-row insert per batch, committed before the caller answers.
public struct EventRepository: Sendable {
    let database: AviaryDatabase

    /// Stores a validated batch; events already stored (same id and ts) are counted, not stored again.
    public func insert(_ events: [Event]) async throws -> (accepted: Int, duplicates: Int) {
        guard !events.isEmpty else { return (0, 0) }
        // Absent optional texts travel as empty strings (PostgresNIO binds no arrays of optionals)
        // and become NULL; validation never lets an empty string through as a value.
        // One row back (how many were stored), not one per stored event.
        let rows = try await database.client.query(
            """
            WITH stored AS (
            INSERT INTO events (id, ts, type, user_id, anonymous_id, value, model, app_version, experiment_key, variant, props)
            SELECT id, ts, type, NULLIF(u, ''), NULLIF(a, ''), value, NULLIF(m, ''), NULLIF(v, ''), NULLIF(e, ''), NULLIF(x, ''), NULLIF(p, '')::jsonb
            FROM unnest(\(events.map(\.id))::uuid[], \(events.map(\.ts))::timestamptz[], \(events.map(\.type))::text[],
                        \(events.map { $0.userID ?? "" })::text[], \(events.map { $0.anonymousID ?? "" })::text[],
                        \(events.map(\.value))::float8[], \(events.map { $0.model ?? "" })::text[], \(events.map { $0.appVersion ?? "" })::text[],
                        \(events.map { $0.experiment ?? "" })::text[], \(events.map { $0.variant ?? "" })::text[], \(events.map { $0.props ?? "" })::text[])
                 AS b(id, ts, type, u, a, value, m, v, e, x, p)
            ON CONFLICT DO NOTHING
            RETURNING 1
            )
            SELECT count(*)::int8 FROM stored
            """, logger: database.logger)
        let accepted = try await rows.value(Int.self) ?? 0
        return (accepted, events.count - accepted)
    }

    /// Makes sure the monthly partitions around `date` exist, so new events do not pile up in
    /// the default partition.
    public func ensurePartitions(around date: Date = Date(), monthsAhead: Int = 2) async throws {
        for offset in 0...monthsAhead {
            let day = Calendar(identifier: .gregorian).date(byAdding: .month, value: offset, to: date) ?? date
            _ = try await database.transaction { connection in
                try await connection.query("SELECT aviary_ensure_event_partition(\(day)::date)", logger: database.logger)
            }
        }
    }

    public func count(type: String? = nil) async throws -> Int {
        let rows = try await database.client.query(
            "SELECT count(*)::int FROM events WHERE \(type)::text IS NULL OR type = \(type)", logger: database.logger)
        return try await rows.value(Int.self) ?? 0
    }
}
