import AviaryCore
import AviaryPostgres
import Logging
import Synchronization

/// Holds the live API keys in memory so that authentication never waits on the database.
/// Presented keys are hashed and compared in constant time against every stored digest.
public final class KeyAuthenticator: Sendable {
    private let keys = Mutex<[APIKey]>([])
    private let loaded = Atomic<Bool>(false)

    public init() {}

    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }

    public func replace(with keys: [APIKey]) {
        self.keys.withLock { $0 = keys }
        loaded.store(true, ordering: .releasing)
    }

    public func authenticate(_ presented: String) -> APIKey? {
        let digest = APIKeySecret.hash(presented)
        let keys = self.keys.withLock { $0 }
        var match: APIKey?
        // No early exit: the time taken does not depend on which key, if any, matched.
        for key in keys where APIKeySecret.constantTimeEquals(key.hash, digest) {
            match = key
        }
        return match
    }

    /// The live key with this id (a dashboard session names its key by id).
    public func key(id: String) -> APIKey? {
        keys.withLock { keys in keys.first { $0.id == id } }
    }

    public func reload(from repository: APIKeyRepository) async throws {
        replace(with: try await repository.active())
    }
}

