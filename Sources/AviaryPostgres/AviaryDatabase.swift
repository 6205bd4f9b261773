import AviaryCore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// The PostgreSQL side of Aviary: one connection pool, run as a service, and the helpers every
/// repository shares.
public final class AviaryDatabase: Service, Sendable {
    /// Serialises configuration writes (experiments, cohorts) so that checks which read other
    /// rows — cohort references, layer ranges, cohorts still in use — cannot race each other.
    static let configLockKey: Int64 = 0x4176_6961_7279_4346  // "AviaryCF"

    public let client: PostgresClient
    public let logger: Logger

    public init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public convenience init(url: String, maximumConnections: Int = 20, logger: Logger) throws {
        self.init(configuration: try DatabaseConfiguration.parse(url, maximumConnections: maximumConnections), logger: logger)
    }

    public func run() async {
        await client.run()
    }

    public var experiments: ExperimentRepository { ExperimentRepository(database: self) }
    public var cohorts: CohortRepository { CohortRepository(database: self) }
    public var keys: APIKeyRepository { APIKeyRepository(database: self) }
    public var audit: AuditRepository { AuditRepository(database: self) }
    public var migrator: Migrator { Migrator(client: client, logger: logger) }
    public var config: ConfigRepository { ConfigRepository(database: self) }
    public var optOuts: OptOutRepository { OptOutRepository(database: self) }
    public var exposures: ExposureRepository { ExposureRepository(database: self) }
    public var reports: ReportRepository { ReportRepository(database: self) }
    public var events: EventRepository { EventRepository(database: self) }
    public var metrics: MetricRepository { MetricRepository(database: self) }

    /// Runs `body` in a transaction holding the configuration lock.
    func configTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.configLockKey))", logger: logger)
            return try await body(connection)
        }
    }

    /// Runs `body` in a transaction that commits when it returns and rolls back when it throws.
    /// Unlike `PostgresClient.withTransaction` it rethrows the body's own error, so domain errors
    /// reach the HTTP layer as themselves.
    func transaction<T: Sendable>(
        begin: PostgresQuery = "BEGIN", _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await client.withConnection { connection in try await transaction(on: connection, begin: begin, body) }
    }

    /// `body` in a transaction on `connection`: committed when it returns, rolled back when it throws.
    nonisolated(nonsending) func transaction<T: Sendable>(
        on connection: PostgresConnection, begin: PostgresQuery = "BEGIN", _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await connection.query(begin, logger: logger)
        let result: T
        do {
            result = try await body(connection)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
        try await connection.query("COMMIT", logger: logger)
        return result
    }

    /// True when the database answers and every migration file is applied.
    public func isReady(migrations: [Migration]) async -> Bool {
        do {
            return try await migrator.pending(migrations).isEmpty
        } catch {
            return false
        }
    }
}

/// Writes an audit line inside the caller's transaction, so the change and its record commit together.
func insertAudit(
    on connection: PostgresConnection, logger: Logger, actor: String?, action: String, targetType: String, targetKey: String,
    experiment: String?, before: JSON?, after: JSON?
) async throws {
    try await connection.query(
        """
        INSERT INTO audit_log (actor_key_id, action, target_type, target_key, experiment_key, before, after)
        VALUES (\(actor), \(action), \(targetType), \(targetKey), \(experiment), \(before?.canonicalString())::jsonb, \(after?.canonicalString())::jsonb)
        """, logger: logger)
}

extension JSON {
    /// Parses JSON text that PostgreSQL produced; stored documents are trusted.
    static func stored(_ text: String) throws -> JSON {
        do {
            return try JSON.parse(Array(text.utf8))
        } catch {
            throw StoredDataError(description: "stored JSON could not be read: \(error)")
        }
    }
}

extension PostgresRowSequence {
    /// The one column of a statement that answers one row: nil when it answers none (the last
    /// row's when it answers more).
    public func value<T: PostgresDecodable>(_ type: T.Type) async throws -> T? {
        var value: T?
        for try await v in decode(T.self) { value = v }
        return value
    }
}

struct StoredDataError: Error, CustomStringConvertible {
    var description: String
}

/// Whether a `PUT` made a new object or replaced one (201 or 200).
public enum PutOutcome: Sendable {
    case created, updated
}
