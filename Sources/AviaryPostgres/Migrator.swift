import AviaryCore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// A schema change: `migrations/NNNN_name.sql`.
public struct Migration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// SHA-256 of the file, so an edited migration is noticed.
    public var checksum: String {
        SHA256.hash(data: Array(sql.utf8)).hexString
    }

    /// Reads every `NNNN_name.sql` in `directory`, ordered by number.
    public static func load(from directory: URL) throws -> [Migration] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        var migrations: [Migration] = []
        for file in names where file.hasSuffix(".sql") {
            let stem = String(file.dropLast(4))
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]) else {
                throw MigrationError.badFileName(file)
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        for (a, b) in zip(migrations, migrations.dropFirst()) where a.version == b.version {
            throw MigrationError.duplicateVersion(a.version)
        }
        return migrations
    }

    /// Where the migration files are: `AVIARY_MIGRATIONS_DIR`, `./migrations`, or beside the executable's checkout.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["AVIARY_MIGRATIONS_DIR"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("migrations")
        if FileManager.default.fileExists(atPath: cwd.path) { return cwd }
        // .build/<config>/aviary → the checkout's migrations/
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("migrations")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        return cwd
    }
}

public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badFileName(String)
    case duplicateVersion(Int)
    case unknownApplied(version: Int, name: String)
    case checksumMismatch(version: Int, name: String)
    case outOfOrder(version: Int, name: String, lastApplied: Int)

    public var description: String {
        switch self {
        case .badFileName(let f): "migration file \(f) is not named NNNN_name.sql"
        case .duplicateVersion(let v): "two migration files have version \(v)"
        case .unknownApplied(let v, let n):
            "the database has migration \(v) (\(n)) applied, but no such file exists; refusing to run on a history that differs from migrations/"
        case .checksumMismatch(let v, let n):
            "migration \(v) (\(n)) was changed after it was applied; refusing to run. Add a new migration instead of editing an applied one"
        case .outOfOrder(let v, let n, let last):
            "migration \(v) (\(n)) is not applied but \(last) is; refusing to apply migrations out of order"
        }
    }
}

/// Applies migrations in order, each in its own transaction, under an advisory lock so that
/// concurrent runs (several replicas starting at once) apply each migration exactly once.
public struct Migrator: Sendable {
    let client: PostgresClient
    let logger: Logger

    /// Applies what is pending and returns the versions applied by this call.
    @discardableResult
    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        try await client.withConnection { connection in
            try await AdvisoryLock.migrations.lock(on: connection, logger: logger)
            do {
                let applied = try await migrateLocked(migrations, on: connection)
                try await AdvisoryLock.migrations.unlock(on: connection, logger: logger)
                return applied
            } catch {
                _ = try? await AdvisoryLock.migrations.unlock(on: connection, logger: logger)
                throw error
            }
        }
    }

    /// Versions whose files are not yet applied; throws when history and files disagree. Reads
    /// only (a readiness probe asks it every few seconds): without the history table, every
    /// file is pending.
    public func pending(_ migrations: [Migration]) async throws -> [Migration] {
        // Held by the caller's deadline (`QueryDeadline`), as `AviaryDatabase`'s connections are.
        try await client.withConnection { connection in
            try await QueryDeadline.holding(connection) {
                let exists = try await connection.query("SELECT to_regclass('aviary_migrations') IS NOT NULL", logger: logger).value(Bool.self)
                guard exists == true else { return migrations }
                return try await verify(migrations, on: connection)
            }
        }
    }

    private func migrateLocked(_ migrations: [Migration], on connection: PostgresConnection) async throws -> [Int] {
        try await ensureTable(on: connection)
        let pending = try await verify(migrations, on: connection)
        var done: [Int] = []
        for migration in pending {
            logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            try await connection.transaction(logger: logger) { connection in
                // A file holds several statements, which one prepared statement cannot; PL/pgSQL's
                // EXECUTE runs them all, and the file travels as a bound parameter, never spliced in.
                try await connection.query(
                    """
                    CREATE OR REPLACE FUNCTION pg_temp.aviary_execute(sql text) RETURNS void
                    LANGUAGE plpgsql AS $fn$ BEGIN EXECUTE sql; END $fn$
                    """, logger: logger)
                try await connection.query("SELECT pg_temp.aviary_execute(\(migration.sql))", logger: logger)
                try await connection.query(
                    "INSERT INTO aviary_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                    logger: logger)
            }
            done.append(migration.version)
        }
        return done
    }

    private func ensureTable(on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS aviary_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """, logger: logger)
    }

    private func verify(_ migrations: [Migration], on connection: PostgresConnection) async throws -> [Migration] {
        let rows = try await connection.query("SELECT version, name, checksum FROM aviary_migrations ORDER BY version", logger: logger)
        var applied: [Int: (String, String)] = [:]
        for try await (version, name, checksum) in rows.decode((Int, String, String).self) {
            applied[version] = (name, checksum)
        }
        let byVersion = Dictionary(uniqueKeysWithValues: migrations.map { ($0.version, $0) })
        for (version, (name, checksum)) in applied.sorted(by: { $0.key < $1.key }) {
            guard let file = byVersion[version] else { throw MigrationError.unknownApplied(version: version, name: name) }
            guard file.checksum == checksum else { throw MigrationError.checksumMismatch(version: version, name: name) }
        }
        let pending = migrations.filter { applied[$0.version] == nil }
        if let first = pending.first, let last = applied.keys.max(), first.version < last {
            throw MigrationError.outOfOrder(version: first.version, name: first.name, lastApplied: last)
        }
        return pending
    }
}
