import AviaryCore
import AviaryPostgres
import Logging

/// Holds the live API keys in memory so that authentication never waits on the database.
/// Presented keys are hashed and compared in constant time against every stored digest.
public final class KeyAuthenticator: Sendable {
    /// The keys, as the newest reload read them (`Reloaded`).
    private let keys = Reloaded<[APIKey]>([])

    public init() {}

    public var isLoaded: Bool { keys.isLoaded }

    public func authenticate(_ presented: String) -> APIKey? {
        let digest = APIKeySecret.hash(presented)
        let keys = self.keys.value
        var match: APIKey?
        // No early exit: the time taken does not depend on which key, if any, matched.
        for key in keys where APIKeySecret.constantTimeEquals(key.hash, digest) {
            match = key
        }
        return match
    }

    /// The live key with this id (a dashboard session names its key by id).
    public func key(id: String) -> APIKey? {
        keys.value.first { $0.id == id }
    }

    public func reload(from repository: APIKeyRepository) async throws {
        try await reload { try await repository.active() }
    }

    /// Serves the keys `read` returns unless a reload that started later has already ended.
    func reload(_ read: () async throws -> [APIKey]) async throws {
        try await keys.reload(read)
    }
}

