import Foundation
import PostgresNIO

/// Reads a `postgres://user:pass@host:port/db?sslmode=…` URL into a PostgresNIO configuration.
public enum DatabaseConfiguration {
    public struct InvalidURL: Error, CustomStringConvertible {
        public var description: String
    }

    /// Set on every connection. A query whose client has gone — a connection closed by a
    /// deadline (`QueryDeadline`) — is ended by PostgreSQL within two seconds instead of running
    /// on, and holding its locks, until it would next write to the socket (PostgreSQL 14 or newer).
    static let startupParameters = [("client_connection_check_interval", "2000")]

    public static func parse(_ url: String, maximumConnections: Int = 20) throws -> PostgresClient.Configuration {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme)
        else {
            throw InvalidURL(description: "AVIARY_DATABASE_URL must look like postgres://user:password@host:port/database")
        }
        guard let user = components.user, !user.isEmpty else {
            throw InvalidURL(description: "AVIARY_DATABASE_URL names no user")
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        let sslmode = components.queryItems?.first { $0.name == "sslmode" }?.value ?? "prefer"
        let tls: PostgresClient.Configuration.TLS
        switch sslmode {
        case "disable": tls = .disable
        case "prefer", "allow": tls = .prefer(.makeClientConfiguration())
        case "require", "verify-ca", "verify-full": tls = .require(.makeClientConfiguration())
        default: throw InvalidURL(description: "unknown sslmode \(sslmode)")
        }
        var config = PostgresClient.Configuration(
            host: components.host ?? "127.0.0.1",
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password?.removingPercentEncoding,
            database: database.isEmpty ? nil : database,
            tls: tls
        )
        config.options.maximumConnections = maximumConnections
        config.options.additionalStartupParameters = startupParameters
        return config
    }

    /// The same URL with another database name, for tests that make their own databases.
    public static func replacingDatabase(in url: String, with database: String) -> String {
        guard var components = URLComponents(string: url) else { return url }
        components.path = "/" + database
        return components.string ?? url
    }
}
