import ArgumentParser
import AviaryCore
import AviaryPostgres
import AviaryServer
import Foundation
import Logging

@main
struct Aviary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Aviary: A/B experiments and feature flags on PostgreSQL.",
        subcommands: [Serve.self, Migrate.self, Keys.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP server (settings from AVIARY_* variables).")

    @Flag(help: "Apply pending migrations before serving.")
    var migrate = false

    func run() async throws {
        var configuration = try AviaryConfiguration.fromEnvironment()
        configuration.migrateOnStart = migrate
        let app = try await buildApplication(configuration: configuration)
        try await app.runService()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending migrations from migrations/ to AVIARY_DATABASE_URL.")

    @Option(help: "The folder of NNNN_name.sql files (default: AVIARY_MIGRATIONS_DIR or ./migrations).")
    var directory: String?

    func run() async throws {
        let configuration = try AviaryConfiguration.fromEnvironment()
        let folder = directory.map { URL(fileURLWithPath: $0) } ?? configuration.migrationsDirectory
        let migrations = try Migration.load(from: folder)
        let applied = try await withDatabase(configuration) { try await $0.migrator.migrate(migrations) }
        print(applied.isEmpty ? "migrations: up to date (\(migrations.count) applied)" : "migrations: applied \(applied.map(String.init).joined(separator: ", "))")
    }
}

struct Keys: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API keys.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it; it is shown only this once.")

        @Option(help: "admin or client")
        var role: String

        @Option(help: "A name to tell the key apart.")
        var name: String = ""

        func validate() throws {
            guard APIKeyRole(rawValue: role) != nil else { throw ValidationError("--role must be admin or client") }
        }

        func run() async throws {
            let configuration = try AviaryConfiguration.fromEnvironment()
            let (key, secret) = try await withDatabase(configuration) {
                try await $0.keys.create(role: APIKeyRole(rawValue: role)!, name: name, actor: nil)
            }
            FileHandle.standardError.write(Data("created \(key.role.rawValue) key \(key.id); it is shown only once:\n".utf8))
            print(secret)
        }
    }
}

/// Runs `body` with a connected database, then shuts the pool down.
func withDatabase<T: Sendable>(_ configuration: AviaryConfiguration, _ body: @Sendable @escaping (AviaryDatabase) async throws -> T) async throws -> T {
    var logger = Logger(label: "aviary")
    logger.logLevel = configuration.logLevel
    let database = try AviaryDatabase(url: configuration.databaseURL, maximumConnections: 2, logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            await database.run()
            return nil
        }
        await database.waitUntilRunning()
        let result = try await body(database)
        group.cancelAll()
        return result
    }
}
