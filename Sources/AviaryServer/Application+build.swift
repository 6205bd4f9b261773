import AviaryCore
import AviaryPostgres
import Hummingbird
import Logging
import ServiceLifecycle

/// Wires configuration, database, authentication and routes into a runnable application.
public func buildApplication(configuration: AviaryConfiguration, logger: Logger? = nil) async throws -> some ApplicationProtocol {
    var logger = logger ?? Logger(label: "aviary")
    logger.logLevel = configuration.logLevel
    let server = try await AviaryServerParts(configuration: configuration, logger: logger)
    let (database, feed, migrations) = (server.database, server.feed, server.migrations)
    var app = Application(
        router: server.router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
        services: server.services,
        logger: logger
    )
    app.beforeServerStarts {
        if configuration.migrateOnStart {
            try await database.migrator.migrate(migrations)
        }
        if let token = configuration.adminToken {
            try await database.keys.bootstrapAdmin(secret: token)
        }
        // Serve from the first request when the database is up: a key that exists must not be
        // told 401 because its server has not read the keys yet. A database slow to answer at
        // start (many servers starting at once) gets up to 30 s; past that the server serves, the
        // feed keeps trying and /readyz says not ready until it succeeds.
        let started = ContinuousClock.now
        await feed.reload()
        while !(feed.authenticator.isLoaded && feed.snapshots.isLoaded), ContinuousClock.now - started < .seconds(30) {
            try? await Task.sleep(for: .milliseconds(200))
            await feed.reload()
        }
    }
    return app
}

/// The router and the services of one server, before they run.
struct AviaryServerParts {
    let router: Router<AviaryRequestContext>
    let services: [any Service]
    let database: AviaryDatabase
    let feed: ConfigFeed
    let migrations: [Migration]

    init(configuration: AviaryConfiguration, logger: Logger) async throws {
        let migrations = try Migration.load(from: configuration.migrationsDirectory)
        let database = try AviaryDatabase(url: configuration.databaseURL, maximumConnections: configuration.databaseMaxConnections, logger: logger)
        // Reports and guardrails only: a small pool.
        let replica = try configuration.replicaURL.map { try AviaryDatabase(url: $0, maximumConnections: 8, logger: logger) }
        let reportSource = ReportSource(primary: database, replica: replica, maxLag: configuration.replicaMaxLag, logger: logger)
        let authenticator = KeyAuthenticator()
        let snapshots = SnapshotStore()
        let metrics = AviaryMetrics()
        let exposures = ExposureRecorder(repository: database.exposures, metrics: metrics, logger: logger)
        let feed = ConfigFeed(database: database, snapshots: snapshots, authenticator: authenticator, pollInterval: configuration.configPollInterval, logger: logger)

        let router = Router(context: AviaryRequestContext.self)
        let contract = try OpenAPIContract.load()
        OpenAPIController(contract: contract).addRoutes(to: router)
        IndexController().addRoutes(to: router)
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorMiddleware())
        // Also without origins: it answers every preflight (one comparison of the method on other requests).
        router.add(middleware: AviaryCORSMiddleware(origins: Set(configuration.corsOrigins)))
        let unreadable: @Sendable () -> [UnreadableObject] = { (snapshots.snapshot.unreadable + authenticator.unreadable).sorted() }
        MetricsEndpoint(metrics: metrics, exposures: exposures, unreadable: unreadable, experiments: database.experiments, reports: reportSource)
            .addRoutes(to: router)
        HealthController(database: database, migrations: migrations, authenticator: authenticator, snapshots: snapshots, unreadable: unreadable)
            .addRoutes(to: router)

        let notifier = NoticeDeliverer(outbox: database.notices, logger: logger, secret: configuration.notifySecret, metrics: metrics)
        if configuration.notifyHosts == nil {
            // A notice, not a warning: a healthy default start prints no warning (docs/operations.md).
            logger.notice("AVIARY_NOTIFY_HOSTS is not set: rollout notices may go to any host an admin names (docs/security.md)")
        }
        // Every change, whoever asks for it (REST, the dashboard, the rollout leader).
        let changes = Changes(database: database, feed: feed, notifyHosts: configuration.notifyHosts)
        let reports = Reports(experiments: database.experiments, metrics: database.metrics, source: reportSource)

        // One limit per key across the admin API and event ingestion; after authentication,
        // which names the key; never on assignment or OFREP.
        let limited = RateLimitMiddleware(limiter: configuration.rateLimit.map(RateLimiter.init(rate:)))
        // The admin API: authenticated first (an unknown caller learns nothing about the routes'
        // parameters), then the parameter check and the rate limit.
        let adminAPI = router.group("v1")
            .add(middleware: AuthMiddleware(authenticator: authenticator, role: .admin))
            .add(middleware: KnownQueryParametersMiddleware(allowed: contract.queryParameters))
            .add(middleware: limited)
        // Innermost: the deadline bounds the handler's wait for PostgreSQL.
        let bounded = adminAPI.group().add(middleware: DatabaseDeadlineMiddleware<AviaryRequestContext>())
        ExperimentsController(repository: database.experiments, notices: database.notices, changes: changes)
            .addRoutes(to: bounded.group("experiments"))
        ReportsController(reports: reports)
            .addRoutes(to: adminAPI.group("experiments").add(middleware: DatabaseDeadlineMiddleware(limit: Reports.deadline)))
        ConfigObjectsController(store: database.cohorts, changes: changes, path: "/v1/cohorts", listField: "cohorts").addRoutes(to: bounded.group("cohorts"))
        ConfigObjectsController(store: database.metrics, changes: changes, path: "/v1/metrics", listField: "metrics").addRoutes(to: bounded.group("metrics"))
        KeysController(repository: database.keys, changes: changes).addRoutes(to: bounded.group("keys"))
        AuditController(repository: database.audit).addRoutes(to: bounded.group("audit"))

        // The client API. Assignment and OFREP never wait on the database and are not rate limited.
        let client = AuthMiddleware(authenticator: authenticator, role: .client)
        AssignController(snapshots: snapshots, exposures: exposures, metrics: metrics).addRoutes(to: router.group("v1/assign").add(middleware: client))
        let clientWrites = router.group("v1").add(middleware: client).add(middleware: KnownQueryParametersMiddleware(allowed: contract.queryParameters))
        OptOutController(changes: changes).addRoutes(to: clientWrites.group("opt-out").add(middleware: DatabaseDeadlineMiddleware<AviaryRequestContext>()))
        // A batch writer per pool connection, less the ones assignment and admin work need.
        EventsController(repository: database.events, maxInFlight: max(2, configuration.databaseMaxConnections - 4), metrics: metrics).addRoutes(
            to: clientWrites.group("events").add(middleware: limited))
        OFREPController(snapshots: snapshots, exposures: exposures, metrics: metrics).addRoutes(
            to: router.group("ofrep/v1/evaluate").add(middleware: AuthMiddleware(authenticator: authenticator, role: .client, emptyErrorBodies: true)))

        let (templates, stylesheet) = try await DashboardController.loadAssets()
        DashboardController(
            templates: templates, stylesheet: stylesheet, database: database, keys: authenticator, reports: reports, changes: changes,
            unreadable: unreadable
        ).addRoutes(to: router)

        // Services stop in reverse order: the server first, then the exposure flush, while the
        // database pool is still up.
        var services: [any Service] = [
            database, feed, exposures, notifier, EventPartitionService(
                repository: database.events, interval: .seconds(6 * 3600), retentionDays: configuration.eventRetentionDays, logger: logger),
            RolloutLeader(changes: changes, reports: reportSource, tick: configuration.rolloutTick, logger: logger),
        ]
        if let replica { services.insert(replica, at: 1) }
        if let interval = configuration.reportRefresh {
            services.append(ReportStateRefresher(database: database, interval: interval, logger: logger))
        }
        self.router = router
        self.services = services
        self.database = database
        self.feed = feed
        self.migrations = migrations
    }
}
