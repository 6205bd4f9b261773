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

    /// Reloads the configuration and the keys, each on its own: keys that load still
    /// authenticate when the configuration could not be read, and the other way round.
    func reload() async {
        // Bounded: a read on a connection the database has just cut can wait without end,
        // and no later notification or poll would reload while this one waits.
        do {
            // What cannot be read keeps the version the snapshot served (`ConfigSnapshot(stored:previous:)`).
            try await snapshots.reload {
                let stored = try await QueryDeadline.within(Self.readLimit) { try await database.config.loadConfiguration() }
                let previous = snapshots.snapshot
                if stored.unreadable.sorted() != previous.unreadable { report(stored.unreadable, was: previous.unreadable) }
                return ConfigSnapshot(stored: stored, previous: previous)
            }
        } catch {
            logger.warning("could not reload configuration; serving the last snapshot", metadata: ["error": "\(String(reflecting: error))"])
        }
        do {
            let keysBefore = authenticator.unreadable
            try await authenticator.reload { try await QueryDeadline.within(Self.readLimit) { try await database.keys.active() } }
            if authenticator.unreadable != keysBefore { report(authenticator.unreadable, was: keysBefore) }
        } catch {
            logger.warning("could not reload the keys; serving the last ones", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Logs the stored objects that cannot be read, once per change of that list: each newly
    /// unreadable one with the validator's message, and those that can be read again.
    func report(_ unreadable: [UnreadableObject], was previous: [UnreadableObject]) {
        let old = Set(previous.map { "\($0.kind.rawValue) \($0.key)" })
        for object in unreadable.sorted() where !old.contains("\(object.kind.rawValue) \(object.key)") {
            logger.error(
                "a stored object cannot be read; serving its last good version or, for an experiment never read, its control",
                metadata: ["kind": "\(object.kind.rawValue)", "key": "\(object.key.prefix(80))", "problem": "\(object.problem.prefix(300))"])
        }
        let now = Set(unreadable.map { "\($0.kind.rawValue) \($0.key)" })
        for object in previous where !now.contains("\(object.kind.rawValue) \(object.key)") {
            logger.notice("a stored object can be read again", metadata: ["kind": "\(object.kind.rawValue)", "key": "\(object.key.prefix(80))"])
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
