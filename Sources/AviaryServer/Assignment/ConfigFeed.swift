import AviaryCore
import AviaryPostgres
import Logging
import ServiceLifecycle

/// Keeps this replica's configuration and keys current: loads them at start, reloads on every
/// `NOTIFY aviary_config` (sent by each configuration write when it commits) and, as a fallback
/// for lost connections, on a timer. While the database is down the last snapshot keeps serving.
struct ConfigFeed: Service {
    let database: AviaryDatabase
    let snapshots: SnapshotStore
    let authenticator: KeyAuthenticator
    let pollInterval: Duration
    let logger: Logger

    func run() async throws {
        // Reload requests coalesce: many notifications during one reload cause one more reload.
        let (requests, requester) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        requester.yield()
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await listen(requester) }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: pollInterval)
                        requester.yield()
                    }
                }
                for await _ in requests { await reload() }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            requester.finish()
        }
    }

    /// How long a reload waits for each of its reads before the next request for a reload may try.
    static let readLimit: Duration = .seconds(10)

    func reload() async {
        do {
            // Bounded: a read on a connection the database has just cut can wait without end,
            // and no later notification or poll would reload while this one waits.
            try await snapshots.reload { try await DatabaseDeadline.probe(limit: Self.readLimit) { try await database.config.loadSnapshot() } }
            try await authenticator.reload { try await DatabaseDeadline.probe(limit: Self.readLimit) { try await database.keys.active() } }
        } catch {
            logger.warning("could not reload configuration; serving the last snapshot", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Holds one connection in `LISTEN`; reconnects after a failure. After every (re)connect it
    /// asks for a reload, since notifications sent while disconnected are lost.
    func listen(_ requester: AsyncStream<Void>.Continuation) async {
        while !Task.isCancelled {
            do {
                try await database.listenForConfigChanges { requester.yield() }
            } catch {
                if Task.isCancelled { return }
                logger.warning("configuration listener lost its connection; retrying", metadata: ["error": "\(String(reflecting: error))"])
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }
}
