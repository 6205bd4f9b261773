import AviaryCore
import AviaryPostgres
import Foundation
import Logging

/// Every setting of the server, read from the environment in one place (README lists them).
public struct AviaryConfiguration: Sendable {
    public var databaseURL: String
    /// A streaming replica for reports and guardrails (`AVIARY_DATABASE_REPLICA_URL`); nil: none.
    public var replicaURL: String?
    /// The replay lag, in seconds, above which reports read the primary (`AVIARY_REPLICA_MAX_LAG`).
    public var replicaMaxLag: Double = 5
    /// Whole monthly event partitions older than this many days are dropped
    /// (`AVIARY_EVENT_RETENTION_DAYS`); nil: events are kept forever.
    public var eventRetentionDays: Int?
    public var host: String
    public var port: Int
    public var adminToken: String?
    public var corsOrigins: [String]
    public var rolloutTick: Duration
    /// How often running experiments' report state is refreshed; nil: never (reports read every event).
    public var reportRefresh: Duration?
    public var logLevel: Logger.Level
    /// How often configuration and keys are re-read as a fallback to `LISTEN/NOTIFY`.
    public var configPollInterval: Duration
    /// Apply pending migrations when the server starts.
    public var migrateOnStart: Bool
    public var migrationsDirectory: URL
    public var databaseMaxConnections: Int
    /// Where rollout notices may go (`AVIARY_NOTIFY_HOSTS`); nil: any host, with a warning at start.
    public var notifyHosts: NotifyHosts?
    /// Signs every notice (`AVIARY_NOTIFY_SECRET`): `X-Aviary-Signature: sha256=<hex>`.
    public var notifySecret: String?
    /// Requests per second per key on admin routes and event ingestion (`AVIARY_RATE_LIMIT`),
    /// bursts up to twice that; nil: no limit.
    public var rateLimit: Double?

    public init(
        databaseURL: String, host: String = "127.0.0.1", port: Int = 8080, adminToken: String? = nil, corsOrigins: [String] = [],
        rolloutTick: Duration = .seconds(5), reportRefresh: Duration? = .seconds(30), logLevel: Logger.Level = .info, configPollInterval: Duration = .seconds(5),
        migrateOnStart: Bool = false, migrationsDirectory: URL, databaseMaxConnections: Int = 20
    ) {
        self.databaseURL = databaseURL
        self.host = host
        self.port = port
        self.adminToken = adminToken
        self.corsOrigins = corsOrigins
        self.rolloutTick = rolloutTick
        self.reportRefresh = reportRefresh
        self.logLevel = logLevel
        self.configPollInterval = configPollInterval
        self.migrateOnStart = migrateOnStart
        self.migrationsDirectory = migrationsDirectory
        self.databaseMaxConnections = databaseMaxConnections
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> AviaryConfiguration {
        guard let url = env["AVIARY_DATABASE_URL"], !url.isEmpty else {
            throw Invalid(description: "AVIARY_DATABASE_URL is not set (postgres://user:password@host:port/database)")
        }
        var config = AviaryConfiguration(databaseURL: url, migrationsDirectory: Migration.defaultDirectory(environment: env))
        if let replica = env["AVIARY_DATABASE_REPLICA_URL"], !replica.isEmpty {
            do { _ = try DatabaseConfiguration.parse(replica) } catch {
                throw Invalid(description: "AVIARY_DATABASE_REPLICA_URL must look like postgres://user:password@host:port/database")
            }
            config.replicaURL = replica
        }
        if let lag = env["AVIARY_REPLICA_MAX_LAG"], !lag.isEmpty {
            guard let s = Double(lag), s > 0, s.isFinite else { throw Invalid(description: "AVIARY_REPLICA_MAX_LAG must be a positive number of seconds") }
            config.replicaMaxLag = s
        }
        if let days = env["AVIARY_EVENT_RETENTION_DAYS"], !days.isEmpty {
            guard let n = Int(days), n > 0 else { throw Invalid(description: "AVIARY_EVENT_RETENTION_DAYS must be a whole number of days above 0") }
            config.eventRetentionDays = n
        }
        if let host = env["AVIARY_HOST"], !host.isEmpty { config.host = host }
        if let port = env["AVIARY_PORT"], !port.isEmpty {
            guard let p = Int(port), (0...65535).contains(p) else { throw Invalid(description: "AVIARY_PORT must be a port number, not \(port)") }
            config.port = p
        }
        if let token = env["AVIARY_ADMIN_TOKEN"], !token.isEmpty {
            guard token.utf8.count >= 16 else { throw Invalid(description: "AVIARY_ADMIN_TOKEN must be at least 16 characters") }
            config.adminToken = token
        }
        if let origins = env["AVIARY_CORS_ORIGINS"] {
            config.corsOrigins = origins.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let tick = env["AVIARY_ROLLOUT_TICK"], !tick.isEmpty {
            guard let s = Double(tick), s > 0 else { throw Invalid(description: "AVIARY_ROLLOUT_TICK must be a positive number of seconds") }
            config.rolloutTick = .milliseconds(Int64(s * 1000))
        }
        if let refresh = env["AVIARY_REPORT_REFRESH"], !refresh.isEmpty {
            guard let s = Double(refresh), s >= 0 else {
                throw Invalid(description: "AVIARY_REPORT_REFRESH must be a number of seconds (0: never)")
            }
            config.reportRefresh = s == 0 ? nil : .milliseconds(Int64(s * 1000))
        }
        if let level = env["AVIARY_LOG_LEVEL"], !level.isEmpty {
            guard let l = Logger.Level(rawValue: level.lowercased()) else {
                throw Invalid(description: "AVIARY_LOG_LEVEL must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.logLevel = l
        }
        if let max = env["AVIARY_DATABASE_MAX_CONNECTIONS"], let n = Int(max), n > 0 { config.databaseMaxConnections = n }
        if let hosts = env["AVIARY_NOTIFY_HOSTS"] {
            do { config.notifyHosts = try NotifyHosts(hosts) } catch { throw Invalid(description: "\(error)") }
        }
        if let secret = env["AVIARY_NOTIFY_SECRET"], !secret.isEmpty {
            guard secret.utf8.count >= 16 else { throw Invalid(description: "AVIARY_NOTIFY_SECRET must be at least 16 characters") }
            config.notifySecret = secret
        }
        if let limit = env["AVIARY_RATE_LIMIT"], !limit.isEmpty {
            guard let n = Double(limit), n >= 0, n.isFinite else { throw Invalid(description: "AVIARY_RATE_LIMIT must be requests per second per key (0: none)") }
            config.rateLimit = n == 0 ? nil : n
        }
        return config
    }
}
