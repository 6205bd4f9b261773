import AviaryCore
import AviaryPostgres
import Hummingbird
import Logging

/// Wires configuration, database, authentication and routes into a runnable application.
public func buildApplication(configuration: AviaryConfiguration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "aviary")
    logger.logLevel = configuration.logLevel
    let migrations = try Migration.load(from: configuration.migrationsDirectory)
    let database = try AviaryDatabase(url: configuration.databaseURL, maximumConnections: configuration.databaseMaxConnections, logger: logger)
    let authenticator = KeyAuthenticator()

    let router = Router(context: AviaryRequestContext.self)
    router.add(middleware: ErrorMiddleware())
    HealthController(database: database, migrations: migrations, authenticator: authenticator).addRoutes(to: router)

    let admin = AuthMiddleware(authenticator: authenticator, role: .admin)
    ExperimentsController(repository: database.experiments).addRoutes(to: router.group("v1/experiments").add(middleware: admin))
    CohortsController(repository: database.cohorts).addRoutes(to: router.group("v1/cohorts").add(middleware: admin))
    KeysController(repository: database.keys, authenticator: authenticator).addRoutes(to: router.group("v1/keys").add(middleware: admin))
    AuditController(repository: database.audit).addRoutes(to: router.group("v1/audit").add(middleware: admin))

    var app = Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        services: [
            database,
            KeyRefreshService(authenticator: authenticator, repository: database.keys, interval: configuration.keyRefreshInterval, logger: logger),
        ],
        logger: logger
    )
    app.beforeServerStarts {
        if configuration.migrateOnStart {
            try await database.migrator.migrate(migrations)
        }
        if let token = configuration.adminToken {
            try await database.keys.bootstrapAdmin(secret: token)
        }
        try await authenticator.reload(from: database.keys)
    }
    return app
}
