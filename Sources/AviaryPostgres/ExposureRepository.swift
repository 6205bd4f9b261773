import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// The exposure history (migration 0008): `exposure_history` holds every variant each unit was
/// served, with the first time; `exposures` holds each unit's earliest exposure and whether it
/// was served more than one variant, which is what A/B reports read.
public struct ExposureRepository: Sendable {
    let database: AviaryDatabase

    /// Records a batch in one transaction. Replicas may send the same exposure again or out of
    /// order: each variant keeps its earliest time and each unit its earliest exposure.
    public func record(_ batch: [Exposure]) async throws {
        guard !batch.isEmpty else { return }
        try await database.transaction { connection in try await record(batch, on: connection) }
    }

    /// `record` inside the caller's transaction. Rows are written in key order, the history
    /// first, so writers of overlapping batches wait for each other instead of deadlocking.
    /// Absent countries and versions travel as empty strings and are stored as NULL.
    func record(_ batch: [Exposure], on connection: PostgresConnection) async throws {
        guard !batch.isEmpty else { return }
        let (experiments, units, variants, times) = (batch.map(\.experiment), batch.map(\.unit), batch.map(\.variant), batch.map(\.at))
        try await connection.query(
            """
            INSERT INTO exposure_history AS h (experiment_key, unit, variant, first_at)
            SELECT e, u, v, min(t) FROM unnest(\(experiments)::text[], \(units)::text[], \(variants)::text[], \(times)::timestamptz[]) AS b(e, u, v, t)
            GROUP BY e, u, v ORDER BY e, u, v
            ON CONFLICT (experiment_key, unit, variant) DO UPDATE SET first_at = excluded.first_at WHERE excluded.first_at < h.first_at
            """, logger: database.logger)
        // Only what changes is written: an earlier first exposure, or a unit's second variant.
        try await connection.query(
            """
            INSERT INTO exposures AS x (experiment_key, unit, variant, first_at, country, app_version, multiple)
            SELECT e, u, (array_agg(v ORDER BY t, v COLLATE "C"))[1], min(t),
                   NULLIF((array_agg(c ORDER BY t))[1], ''), NULLIF((array_agg(a ORDER BY t))[1], ''), count(DISTINCT v) > 1
            FROM unnest(\(experiments)::text[], \(units)::text[], \(variants)::text[], \(times)::timestamptz[],
                        \(batch.map { $0.country ?? "" })::text[], \(batch.map { $0.appVersion ?? "" })::text[]) AS b(e, u, v, t, c, a)
            GROUP BY e, u ORDER BY e, u
            ON CONFLICT (experiment_key, unit) DO UPDATE
                SET variant = CASE WHEN excluded.first_at < x.first_at THEN excluded.variant ELSE x.variant END,
                    country = CASE WHEN excluded.first_at < x.first_at THEN excluded.country ELSE x.country END,
                    app_version = CASE WHEN excluded.first_at < x.first_at THEN excluded.app_version ELSE x.app_version END,
                    first_at = least(x.first_at, excluded.first_at),
                    multiple = x.multiple OR excluded.multiple OR excluded.variant <> x.variant,
                    recorded_at = now()
                WHERE excluded.first_at < x.first_at OR (NOT x.multiple AND (excluded.multiple OR excluded.variant <> x.variant))
            """, logger: database.logger)
    }

    /// Units ever served each variant of an experiment (a unit served two counts in both).
    public func count(experiment: String) async throws -> [String: Int] {
        try await database.query(
            "SELECT variant, count(*)::int FROM exposure_history WHERE experiment_key = \(experiment) GROUP BY variant") { rows in
            var result: [String: Int] = [:]
            for try await (variant, n) in rows.decode((String, Int).self) { result[variant] = n }
            return result
        }
    }

    /// Every experiment's units served one variant only, per variant (the dashboard's list).
    public func unitsPerVariant() async throws -> [String: [String: Int]] {
        try await database.query(
            "SELECT experiment_key, variant, count(*)::int FROM exposures WHERE NOT multiple GROUP BY 1, 2") { rows in
            var result: [String: [String: Int]] = [:]
            for try await (experiment, variant, n) in rows.decode((String, String, Int).self) { result[experiment, default: [:]][variant] = n }
            return result
        }
    }

    /// A unit's history in an experiment.
    public func history(experiment: String, unit: String) async throws -> ExposureHistory {
        try await database.query(
            "SELECT variant, first_at FROM exposure_history WHERE experiment_key = \(experiment) AND unit = \(unit)") { rows in
            var history = ExposureHistory()
            for try await (variant, at) in rows.decode((String, Date).self) { history.record(variant, at: at) }
            return history
        }
    }
}
