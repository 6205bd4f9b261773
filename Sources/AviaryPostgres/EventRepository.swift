import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Outcome events: one multi-row insert per batch, committed before the caller answers.
public struct EventRepository: Sendable {
    let database: AviaryDatabase

    /// Stores a validated batch; events already stored (same id and ts) are counted, not stored again.
    /// Events naming an experiment and a variant are exposures too: they join the exposure
    /// history in the same transaction.
    public func insert(_ events: [Event]) async throws -> (accepted: Int, duplicates: Int) {
        guard !events.isEmpty else { return (0, 0) }
        let claims = events.filter { $0.experiment != nil && $0.variant != nil }
        let accepted: Int
        if claims.isEmpty {
            accepted = try await database.query(Self.insertStatement(events)) { try await $0.value(Int.self) } ?? 0
        } else {
            accepted = try await database.transaction { connection in
                let accepted = try await connection.query(Self.insertStatement(events), logger: database.logger).value(Int.self) ?? 0
                try await ExposureRepository(database: database).record(try await exposures(claims, on: connection), on: connection)
                return accepted
            }
        }
        return (accepted, events.count - accepted)
    }

    /// One multi-row insert answering one row: how many events were stored. Absent optional texts
    /// travel as empty strings (PostgresNIO binds no arrays of optionals) and become NULL;
    /// validation never lets an empty string through as a value.
    static func insertStatement(_ events: [Event]) -> PostgresQuery {
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
        """
    }

    /// The exposures that events naming an experiment make: each in the unit the experiment
    /// counts (`Attribution`). Experiments that do not exist, and events without that unit's
    /// id, make none.
    private func exposures(_ claims: [Event], on connection: PostgresConnection) async throws -> [Exposure] {
        let named = Array(Set(claims.compactMap(\.experiment)))
        let rows = try await connection.query(
            "SELECT key, definition->>'unit', definition->>'fallback_unit' FROM experiments WHERE key = ANY(\(named)::text[])",
            logger: database.logger)
        var attributions: [String: Attribution] = [:]
        for try await (key, unit, fallback) in rows.decode((String, String?, String?).self) {
            // As the validator reads them: the unit defaults to user_id.
            attributions[key] = Attribution(
                unit: unit.flatMap(UnitKind.init(rawValue:)) ?? .userID, fallback: fallback.flatMap(UnitKind.init(rawValue:)))
        }
        return claims.compactMap { claim in
            guard let experiment = claim.experiment, let variant = claim.variant, let attribution = attributions[experiment],
                let unit = attribution.unit(userID: claim.userID, anonymousID: claim.anonymousID)
            else { return nil }
            return Exposure(experiment: experiment, unit: unit, variant: variant, at: claim.ts, appVersion: claim.appVersion)
        }
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

    /// Detaches and drops the monthly event partitions that end more than a day before
    /// `cutoff` (the day covers any time zone the bounds were written in), never the default
    /// one; audits each drop and clears every report state, whose next refresh rebuilds it from
    /// the events left (docs/operations.md, "Retention"). Answers the partitions dropped. One
    /// server at a time: the others wait, then find nothing left to drop.
    public func dropPartitions(endingBefore cutoff: Date, retentionDays: Int) async throws -> [String] {
        try await database.transaction { connection in
            let logger = database.logger
            try await AdvisoryLock.eventRetention.lockForTransaction(on: connection, logger: logger)
            let names = try await connection.query(
                """
                SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'events'::regclass AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
                  AND to_date(substr(c.relname, 8), 'YYYY_MM') + interval '1 month 1 day' <= \(cutoff)::timestamptz
                ORDER BY 1
                """, logger: logger
            ).values(String.self)
            for name in names {
                // The name matched ^events_[0-9]{4}_[0-9]{2}$ above: safe to splice.
                try await connection.query(PostgresQuery(unsafeSQL: "ALTER TABLE events DETACH PARTITION \(name)"), logger: logger)
                try await connection.query(PostgresQuery(unsafeSQL: "DROP TABLE \(name)"), logger: logger)
                try await insertAudit(
                    on: connection, logger: logger, actor: nil, action: "event_partition.drop", targetType: "event_partition", targetKey: name,
                    experiment: nil, before: nil, after: ["partition": .string(name), "retention_days": .number(Double(retentionDays))])
            }
            if !names.isEmpty { try await connection.query("DELETE FROM report_states", logger: logger) }
            return names
        }
    }

    public func count(type: String? = nil) async throws -> Int {
        try await database.query(
            "SELECT count(*)::int FROM events WHERE \(type)::text IS NULL OR type = \(type)") { try await $0.value(Int.self) ?? 0 }
    }
}
