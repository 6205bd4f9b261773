import AviaryPostgres
import Foundation
import Logging
import PostgresNIO

/// A private database per test, made from `AVIARY_TEST_DATABASE_URL` (set by `scripts/test`),
/// so suites run in parallel without seeing each other's rows, locks or notifications.
public enum TestDatabase {
    public struct NotConfigured: Error, CustomStringConvertible {
        public var description: String {
            "AVIARY_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts PostgreSQL"
        }
    }

    public static var baseURL: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["AVIARY_TEST_DATABASE_URL"], !url.isEmpty else { throw NotConfigured() }
            return url
        }
    }

    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let migrationsDirectory = repositoryRoot.appendingPathComponent("migrations")

    public static var logger: Logger {
        var logger = Logger(label: "aviary-test")
        logger.logLevel = .warning
        return logger
    }

    /// Creates an empty database and returns its URL.
    public static func create() async throws -> (name: String, url: String) {
        let base = try baseURL
        let name = "aviary_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await admin(base) { connection in
            // The name is made here from hex digits only, so it is safe to splice in.
            try await connection.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        }
        return (name, DatabaseConfiguration.replacingDatabase(in: base, with: name))
    }

    public static func drop(_ name: String) async {
        guard let base = try? baseURL else { return }
        try? await admin(base) { connection in
            try await connection.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: logger)
        }
    }

    /// Runs `body` with the URL of a fresh, empty database that is dropped afterwards.
    public static func withFresh<T: Sendable>(_ body: @Sendable (String) async throws -> T) async throws -> T {
        let (name, url) = try await create()
        do {
            let result = try await body(url)
            await drop(name)
            return result
        } catch {
            await drop(name)
            throw error
        }
    }

    /// Runs `body` with a fresh, migrated database that is dropped afterwards.
    public static func withMigrated<T: Sendable>(_ body: @Sendable (String, AviaryDatabase) async throws -> T) async throws -> T {
        try await withFresh { url in
            try await withRunning(url) { database in
                try await database.migrator.migrate(try Migration.load(from: migrationsDirectory))
                return try await body(url, database)
            }
        }
    }

    /// The `aviary` executable that `swift build` made beside the tests.
    public static var aviaryExecutable: URL {
        get throws {
            for candidate in [".build/debug/aviary", ".build/release/aviary"] {
                let url = repositoryRoot.appendingPathComponent(candidate)
                if FileManager.default.isExecutableFile(atPath: url.path) { return url }
            }
            throw NotBuilt()
        }
    }

    public struct NotBuilt: Error, CustomStringConvertible {
        public var description: String { "the aviary executable is not built: scripts/test runs swift build first" }
    }

    /// Runs `body` with a connection pool on `url` that is shut down afterwards.
    public static func withRunning<T: Sendable>(_ url: String, _ body: @Sendable (AviaryDatabase) async throws -> T) async throws -> T {
        let database = try AviaryDatabase(url: url, maximumConnections: 4, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await database.run() }
            defer { group.cancelAll() }
            await database.waitUntilRunning()
            return try await body(database)
        }
    }

    /// Runs `body` while another session of database `url` holds `table` in ACCESS EXCLUSIVE
    /// mode, for `seconds` from before `body` starts; returns once the lock is released.
    public static func whileLocked<T: Sendable>(
        _ table: StaticString, in url: String, for seconds: Int, _ body: @Sendable () async throws -> T
    ) async throws -> T {
        let client = PostgresClient(configuration: try DatabaseConfiguration.parse(url), backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            let locked = AsyncStream<Void>.makeStream()
            let holder = Task {
                // Ends the wait below also when the lock could not be taken.
                defer { locked.continuation.finish() }
                try await client.withConnection { connection in
                    try await connection.query("BEGIN", logger: logger)
                    try await connection.query("LOCK TABLE \(unescaped: "\(table)") IN ACCESS EXCLUSIVE MODE", logger: logger)
                    locked.continuation.yield()
                    try await connection.query("SELECT pg_sleep(\(seconds))", logger: logger)
                    try await connection.query("COMMIT", logger: logger)
                }
            }
            for await _ in locked.stream { break }
            let result = try await body()
            try await holder.value
            return result
        }
    }

    private static func admin(_ url: String, _ body: @Sendable (PostgresConnection) async throws -> Void) async throws {
        let config = try DatabaseConfiguration.parse(url)
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            try await client.withConnection { try await body($0) }
        }
    }
}
