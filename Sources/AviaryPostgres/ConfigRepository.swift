import AviaryCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// What every replica serves from: the active configuration as one snapshot, and the
/// notification channel that tells replicas to reload it.
public struct ConfigRepository: Sendable {
    /// Every configuration write notifies this channel in its transaction, so listeners hear of
    /// it exactly when it commits.
    public static let channel = "aviary_config"

    let database: AviaryDatabase
    var logger: Logger { database.logger }

    /// Reads active experiments, cohorts and opt-outs in one repeatable-read transaction, each
    /// row on its own: one that cannot be read is listed in `unreadable` (with a control-only
    /// stand-in when it is an experiment whose control can still be told) and stops nothing else.
    public func loadConfiguration() async throws -> StoredConfiguration {
        try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            let experimentRows = try await ExperimentRepository.decodeRows(
                try await connection.query(
                    "SELECT \(unescaped: ExperimentRepository.columns) FROM experiments WHERE archived_at IS NULL AND status <> 'draft' ORDER BY key",
                    logger: logger))
            let (experiments, unreadableExperiments) = experimentRows.map(\.stored).partitioned()
            let (cohorts, unreadableCohorts) = try await Cohort.decode(
                try await connection.query(PostgresQuery(unsafeSQL: Cohort.selectAll + " ORDER BY key"), logger: logger)
            ).map(\.stored).partitioned()
            let optedOut = Set(try await connection.query("SELECT unit FROM opt_outs", logger: logger).values(String.self))
            // Assignment reads no metric; an unreadable one is still shown with the rest.
            let unreadableMetrics = try await Metric.decode(
                try await connection.query(PostgresQuery(unsafeSQL: Metric.selectAll + " ORDER BY key"), logger: logger)
            ).compactMap(\.stored.unreadable)
            let unreadable = unreadableExperiments + unreadableCohorts + unreadableMetrics
            return StoredConfiguration(
                revision: Self.revision(experiments: experiments, cohorts: cohorts, optedOut: optedOut, unreadable: unreadable), experiments: experiments,
                cohorts: cohorts, optedOut: optedOut, unreadable: unreadable,
                standIns: experimentRows.filter(\.standInServesControl).compactMap(\.standIn))
        }
    }

    /// A digest of what assignment depends on: equal digests mean equal answers.
    static func revision(experiments: [Experiment], cohorts: [Cohort], optedOut: Set<String>, unreadable: [UnreadableObject] = []) -> String {
        var hasher = SHA256()
        for e in experiments { hasher.update(data: Array("e\(e.key)\u{0}\(e.revision)\n".utf8)) }
        for c in cohorts { hasher.update(data: Array("c\(c.key)\u{0}\(c.revision)\n".utf8)) }
        for u in unreadable { hasher.update(data: Array("u\(u.kind)\u{0}\(u.key)\u{0}\(u.problem)\n".utf8)) }
        for u in optedOut.sorted() { hasher.update(data: Array("o\(u)\n".utf8)) }
        return hasher.finalize().prefix(12).hexString
    }
}

/// Sends the configuration notification inside the caller's transaction.
func notifyConfigChanged(on connection: PostgresConnection, logger: Logger, what: String) async throws {
    try await connection.query("SELECT pg_notify(\(ConfigRepository.channel), \(what))", logger: logger)
}
