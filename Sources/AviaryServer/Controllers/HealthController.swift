import AviaryCore
import AviaryPostgres
import Hummingbird

/// `/healthz`: the process answers. `/readyz`: the database answers, migrations are applied
/// and keys and configuration are loaded — what a load balancer should wait for. Stored objects
/// that cannot be read do not make a server unready (it serves the others); `unreadable`
/// lists them.
struct HealthController {
    let database: AviaryDatabase
    let migrations: [Migration]
    let authenticator: KeyAuthenticator
    let snapshots: SnapshotStore
    let unreadable: @Sendable () -> [UnreadableObject]

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("healthz") { _, _ in Response.json(["status": "ok"]) }
        router.get("readyz") { _, _ in
            // A database that does not answer within two seconds is not ready.
            let databaseReady = (try? await DatabaseDeadline.run(limit: .seconds(2)) { await database.isReady(migrations: migrations) }) ?? false
            let ready = databaseReady && authenticator.isLoaded && snapshots.isLoaded
            return Response.json(
                [
                    "status": .string(ready ? "ready" : "not_ready"), "database": .bool(databaseReady), "keys_loaded": .bool(authenticator.isLoaded),
                    "config_loaded": .bool(snapshots.isLoaded), "config_revision": .string(snapshots.snapshot.revision),
                    "unreadable": .array(unreadable().map(\.json)),
                ],
                status: ready ? .ok : .serviceUnavailable)
        }
    }
}
