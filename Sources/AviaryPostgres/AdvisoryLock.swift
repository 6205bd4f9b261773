import Logging
import PostgresNIO

/// Every PostgreSQL advisory lock Aviary takes, in one place, so that no two uses share a key.
/// (Migration 0003's partition function takes `hashtext` of the partition's name as well.)
enum AdvisoryLock {
    /// Configuration writes, as a transaction lock: checks that read other rows (cohort
    /// references, layer ranges, objects in use) cannot race each other.
    case configuration
    /// A migration run, as a session lock: replicas starting together apply each file once.
    case migrations
    /// Rollout leadership, as a session lock held for as long as a server leads.
    case rolloutLeader
    /// One experiment's report-state refresh, as a session lock.
    case reportState(experiment: String)
    /// Dropping event partitions past the retention, as a transaction lock.
    case eventRetention

    /// Until the transaction ends.
    func lockForTransaction(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(call("pg_advisory_xact_lock"), logger: logger)
    }

    /// For the session, waiting for it.
    func lock(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(call("pg_advisory_lock"), logger: logger)
    }

    /// For the session if free; whether it was taken.
    func tryLock(on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.query(call("pg_try_advisory_lock"), logger: logger).value(Bool.self) ?? false
    }

    func unlock(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(call("pg_advisory_unlock"), logger: logger)
    }

    /// `SELECT function(key)`: a fixed 64-bit key, or `hashtext` of a bound text.
    private func call(_ function: StaticString) -> PostgresQuery {
        var bindings = PostgresBindings()
        var argument = "$1"
        switch self {
        case .configuration: bindings.append(0x4176_6961_7279_4346 as Int64)  // "AviaryCF"
        case .migrations: bindings.append(0x4176_6961_7279_4D47 as Int64)  // "AviaryMG"
        case .rolloutLeader: bindings.append(0x6176_6961_7279_2E72 as Int64)  // "aviary.r"
        case .eventRetention: bindings.append(0x4176_6961_7279_5254 as Int64)  // "AviaryRT"
        case .reportState(let experiment):
            bindings.append("aviary.report_state:" + experiment)
            argument = "hashtext($1)"
        }
        return PostgresQuery(unsafeSQL: "SELECT \(function)(\(argument))", binds: bindings)
    }
}

extension PostgresConnection {
    /// `body` in a transaction: committed when it returns, rolled back when it throws (its own
    /// error rethrown, so domain errors reach the HTTP layer as themselves). The one place
    /// Aviary writes BEGIN and COMMIT.
    nonisolated(nonsending) func transaction<T: Sendable>(
        begin: PostgresQuery = "BEGIN", logger: Logger, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await query(begin, logger: logger)
        let result: T
        do {
            result = try await body(self)
        } catch {
            _ = try? await query("ROLLBACK", logger: logger)
            throw error
        }
        try await query("COMMIT", logger: logger)
        return result
    }
}
