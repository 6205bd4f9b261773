import Foundation
import Logging
import PostgresNIO

/// The report state (migration 0007): per experiment, one row per unit with its per-unit values,
/// exact as of a watermark. The watermark is a time before which every writing transaction had
/// ended when the state's snapshot was taken: events (`received_at`) and exposures
/// (`recorded_at`) carry their transaction's start time, so whatever the state could not see is
/// stamped at or after the watermark. A report or a refresh recomputes, from the events, every
/// unit with such an event or exposure (the touched units) and takes the others from the state.
/// The state is therefore never stale, only slower to read the longer it goes unrefreshed.
///
/// The writers must be sessions whose `pg_stat_activity` rows Aviary's role can read (its own
/// role, or any with `pg_read_all_stats`).
enum ReportState {
    /// The start of the oldest transaction still open in this database (less a second for a
    /// transaction that has taken its start time but not yet published it), or now.
    static func currentWatermark(_ database: AviaryDatabase) async throws -> Date {
        try await database.query(
            """
            SELECT least(now() - interval '1 second', min(xact_start) - interval '1 second')
            FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
            """) { rows in
            guard let watermark = try await rows.value(Date.self) else { throw StoredDataError(description: "pg_stat_activity gave no watermark") }
            return watermark
        }
    }

    /// The state's watermark when it exists and was computed for `signature`.
    static func watermark(_ connection: PostgresConnection, experiment: String, signature: String, logger: Logger) async throws -> Date? {
        try await connection.query(
            "SELECT watermark FROM report_states WHERE experiment_key = \(experiment) AND signature = \(signature)", logger: logger
        ).value(Date.self)
    }

    /// Units that may have changed since `watermark`: the experiment's units with events
    /// received since, and those whose exposure changed since (a new unit, an earlier first
    /// exposure, a second variant).
    static func touchedUnits(_ connection: PostgresConnection, plan: ReportSQL, since watermark: Date, logger: Logger) async throws -> [String] {
        var units: [String] = []
        for try await unit in try await connection.query(plan.touchedUnits(since: watermark), logger: logger).decode(String.self) {
            units.append(unit)
        }
        return units
    }
}
