import AviaryCore
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The PostgreSQL side of Aviary: one connection pool, run as a service, and the helpers every
/// repository shares.
public final class AviaryDatabase: Service, Sendable {
    let client: PostgresClient
    public let logger: Logger
    /// Set when `run()` begins (`waitUntilRunning`).
    private let started = Atomic<Bool>(false)

    public init(configuration: PostgresClient.Configuration, logger: Logger) {
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    public convenience init(url: String, maximumConnections: Int = 20, logger: Logger) throws {
        self.init(configuration: try DatabaseConfiguration.parse(url, maximumConnections: maximumConnections), logger: logger)
    }

    public func run() async {
        started.store(true, ordering: .releasing)
        await client.run()
    }

    /// Returns once `run()` has started the pool. A command that queries right after starting
    /// `run()` in another task would otherwise race it, and PostgresNIO warns of a lease before
    /// `run()` (which sets its own flag first thing, before any suspension: a moment suffices).
    public func waitUntilRunning() async {
        while !started.load(ordering: .acquiring) { await Task.yield() }
        try? await Task.sleep(for: .milliseconds(5))
    }

    public var experiments: ExperimentRepository { ExperimentRepository(database: self) }
    public var cohorts: ConfigObjectStore<Cohort> { ConfigObjectStore(database: self, table: ObjectTable()) }
    public var keys: APIKeyRepository { APIKeyRepository(database: self) }
    public var audit: AuditRepository { AuditRepository(database: self) }
    public var migrator: Migrator { Migrator(client: client, logger: logger) }
    public var config: ConfigRepository { ConfigRepository(database: self) }
    public var optOuts: OptOutRepository { OptOutRepository(database: self) }
    public var exposures: ExposureRepository { ExposureRepository(database: self) }
    public var reports: ReportRepository { ReportRepository(database: self) }
    public var events: EventRepository { EventRepository(database: self) }
    public var notices: NoticeOutbox { NoticeOutbox(database: self) }
    public var metrics: ConfigObjectStore<Metric> { ConfigObjectStore(database: self, table: ObjectTable()) }

    /// Runs `body` in a transaction holding the configuration lock.
    func configTransaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction { connection in
            try await AdvisoryLock.configuration.lockForTransaction(on: connection, logger: logger)
            return try await body(connection)
        }
    }

    /// Runs `body` on a pooled connection, held by the running task's deadlines
    /// (`QueryDeadline`): every repository leases through here.
    nonisolated(nonsending) func withConnection<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await client.withConnection { connection in try await QueryDeadline.holding(connection) { try await body(connection) } }
    }

    /// Runs `query` on a pooled connection and hands its rows to `read`.
    func query<T: Sendable>(_ query: PostgresQuery, _ read: (PostgresRowSequence) async throws -> T) async throws -> T {
        try await withConnection { connection in try await read(try await connection.query(query, logger: logger)) }
    }

    /// Runs `query` on a pooled connection, its rows discarded.
    func execute(_ query: PostgresQuery) async throws {
        try await withConnection { connection in _ = try await connection.query(query, logger: logger) }
    }

    /// Runs `body` in a transaction on a pooled connection (`PostgresConnection.transaction`).
    func transaction<T: Sendable>(
        begin: PostgresQuery = "BEGIN", _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await withConnection { connection in try await connection.transaction(begin: begin, logger: logger, body) }
    }

    /// Holds a connection listening for configuration writes (`NOTIFY aviary_config`, sent by
    /// each write when it commits): calls `notice` once listening has begun — notices sent while
    /// disconnected are lost, so the caller reloads then — and on every notification. Returns or
    /// throws when the connection ends.
    public func listenForConfigChanges(_ notice: @Sendable () -> Void) async throws {
        try await client.withConnection { connection in
            try await connection.listen(on: ConfigRepository.channel) { notifications in
                notice()
                for try await _ in notifications { notice() }
            }
        }
    }

    /// Runs `body` while this server leads rollouts: it holds the leader lock, a session
    /// advisory lock on a connection of its own, for as long as that session lives. Answers
    /// false at once when another server leads. `body` is given `isHeld`, false once the
    /// session has ended, and must return then; the session is ended when `body` returns or
    /// throws, which releases the lock whatever state the connection is in. Trying the lock
    /// waits `tryLimit` at most (`QueryDeadline`).
    public func withLeaderLock(
        tryLimit: Duration = .seconds(10), _ body: (_ isHeld: @Sendable () -> Bool) async throws -> Void
    ) async throws -> Bool {
        try await client.withConnection { connection in
            let logger = logger
            let taken = try await QueryDeadline.within(tryLimit) {
                try await QueryDeadline.holding(connection) { try await AdvisoryLock.rolloutLeader.tryLock(on: connection, logger: logger) }
            }
            guard taken else { return false }
            do {
                // No query checks the lock: one sent on a connection the server has terminated can
                // wait forever.
                try await body { !connection.isClosed }
            } catch {
                try? await connection.close()
                throw error
            }
            try? await connection.close()
            return true
        }
    }

    /// Whether `error` means "not now": PostgreSQL cannot be reached or refuses work for a
    /// while — connection failures, connection exceptions (08), insufficient resources (53),
    /// operator intervention (57), a database refusing connections (55000).
    public static func isUnavailable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        guard error.code == .server else { return true }
        let state = error.serverInfo?[.sqlState] ?? ""
        return state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57") || state == "55000"
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

    /// The one column of every row.
    public func values<T: PostgresDecodable>(_ type: T.Type) async throws -> [T] {
        var values: [T] = []
        for try await v in decode(T.self) { values.append(v) }
        return values
    }
}

struct StoredDataError: Error, CustomStringConvertible {
    var description: String
}
