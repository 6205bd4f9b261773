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

    /// Reads active experiments, cohorts and opt-outs in one repeatable-read transaction.
    public func loadSnapshot() async throws -> ConfigSnapshot {
        try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            let experiments = try await ExperimentRepository.decode(
                try await connection.query(
                    "SELECT \(unescaped: ExperimentRepository.columns) FROM experiments WHERE archived_at IS NULL AND status <> 'draft' ORDER BY key",
                    logger: logger))
            let cohorts = try await Cohort.decode(try await connection.query(PostgresQuery(unsafeSQL: Cohort.selectAll + " ORDER BY key"), logger: logger))
            let optedOut = Set(try await connection.query("SELECT unit FROM opt_outs", logger: logger).values(String.self))
            return ConfigSnapshot(
                revision: Self.revision(experiments: experiments, cohorts: cohorts, optedOut: optedOut), experiments: experiments, cohorts: cohorts,
                optedOut: optedOut)
        }
    }

    /// A digest of what assignment depends on: equal digests mean equal answers.
    static func revision(experiments: [Experiment], cohorts: [Cohort], optedOut: Set<String>) -> String {
        var hasher = SHA256()
        for e in experiments { hasher.update(data: Array("e\(e.key)\u{0}\(e.revision)\n".utf8)) }
        for c in cohorts { hasher.update(data: Array("c\(c.key)\u{0}\(c.revision)\n".utf8)) }
        for u in optedOut.sorted() { hasher.update(data: Array("o\(u)\n".utf8)) }
        return hasher.finalize().prefix(12).hexString
    }
}

/// Sends the configuration notification inside the caller's transaction.
func notifyConfigChanged(on connection: PostgresConnection, logger: Logger, what: String) async throws {
    try await connection.query("SELECT pg_notify(\(ConfigRepository.channel), \(what))", logger: logger)
}
