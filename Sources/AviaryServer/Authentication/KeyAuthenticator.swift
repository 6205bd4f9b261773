import AviaryCore
import AviaryPostgres
import Logging
import Synchronization

/// Holds the live API keys in memory so that authentication never waits on the database.
/// Presented keys are hashed and compared in constant time against every stored digest.
public final class KeyAuthenticator: Sendable {
    /// The keys and the number of the reload that read them.
    private let keys = Mutex<(keys: [APIKey], reload: Int)>(([], 0))
    private let loaded = Atomic<Bool>(false)
    private let reloads = Atomic<Int>(0)

    public init() {}

    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }

    public func replace(with keys: [APIKey]) {
        replace(with: keys, reload: reloads.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    /// Serves `keys`, read by reload number `reload`, unless a later-numbered reload already
    /// replaced them: reloads run concurrently (after each key write, after each configuration
    /// notification) and may end in any order, as `SnapshotStore.replace` explains.
    private func replace(with keys: [APIKey], reload: Int) {
        self.keys.withLock { if $0.reload < reload { $0 = (keys, reload) } }
        loaded.store(true, ordering: .releasing)
    }

    public func authenticate(_ presented: String) -> APIKey? {
        let digest = APIKeySecret.hash(presented)
        let keys = self.keys.withLock { $0.keys }
        var match: APIKey?
        // No early exit: the time taken does not depend on which key, if any, matched.
        for key in keys where APIKeySecret.constantTimeEquals(key.hash, digest) {
            match = key
        }
        return match
    }

    /// The live key with this id (a dashboard session names its key by id).
    public func key(id: String) -> APIKey? {
        keys.withLock { $0.keys.first { $0.id == id } }
    }

    public func reload(from repository: APIKeyRepository) async throws {
        let number = reloads.wrappingAdd(1, ordering: .relaxed).newValue
        replace(with: try await repository.active(), reload: number)
    }
}

