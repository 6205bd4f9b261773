import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// One unit's first assignment to a running experiment.
public struct Exposure: Sendable, Hashable {
    public var experiment: String
    public var unit: String
    public var variant: String
    public var at: Date
    public var country: String?
    public var appVersion: String?

    public init(experiment: String, unit: String, variant: String, at: Date, country: String?, appVersion: String?) {
        self.experiment = experiment
        self.unit = unit
        self.variant = variant
        self.at = at
        self.country = country
        self.appVersion = appVersion
    }
}

public struct ExposureRepository: Sendable {
    let database: AviaryDatabase

    /// Writes a batch in one statement (arrays of values; an absent country or version travels as
    /// an empty string and is stored as NULL). A unit already exposed keeps its earliest exposure, even
    /// when replicas send theirs out of order.
    public func insert(_ batch: [Exposure]) async throws {
        guard !batch.isEmpty else { return }
        try await database.client.query(
            """
            INSERT INTO exposures AS x (experiment_key, unit, variant, first_at, country, app_version)
            SELECT e, u, v, t, NULLIF(c, ''), NULLIF(a, '')
            FROM unnest(\(batch.map(\.experiment))::text[], \(batch.map(\.unit))::text[], \(batch.map(\.variant))::text[],
                        \(batch.map(\.at))::timestamptz[], \(batch.map { $0.country ?? "" })::text[], \(batch.map { $0.appVersion ?? "" })::text[])
                 AS b(e, u, v, t, c, a)
            ON CONFLICT (experiment_key, unit) DO UPDATE
                SET variant = excluded.variant, first_at = excluded.first_at, country = excluded.country, app_version = excluded.app_version,
                    recorded_at = now()
                WHERE excluded.first_at < x.first_at
            """, logger: database.logger)
    }

    /// Units exposed per variant; with `since`, only those first exposed at or after it.
    public func count(experiment: String, since: Date? = nil) async throws -> [String: Int] {
        let rows = try await database.client.query(
            """
            SELECT variant, count(*)::int FROM exposures
            WHERE experiment_key = \(experiment) AND (\(since)::timestamptz IS NULL OR first_at >= \(since))
            GROUP BY variant
            """, logger: database.logger)
        var result: [String: Int] = [:]
        for try await (variant, n) in rows.decode((String, Int).self) { result[variant] = n }
        return result
    }
}
