import AviaryCore
import AviaryPostgres
import Logging

/// Holds the live API keys in memory so that authentication never waits on the database.
/// Presented keys are hashed and compared in constant time against every stored digest.
public final class KeyAuthenticator: Sendable {
    /// The key rows, as the newest reload read them (`Reloaded`).
    private let rows = Reloaded<[Stored<APIKey>]>([])

    public init() {}

    public var isLoaded: Bool { rows.isLoaded }

    /// Key rows that could not be read at the last reload; those keys do not authenticate.
    public var unreadable: [UnreadableObject] { rows.value.compactMap(\.unreadable) }

    public func authenticate(_ presented: String) -> APIKey? {
        let digest = APIKeySecret.hash(presented)
        let keys = rows.value.compactMap(\.object)
        var match: APIKey?
        // No early exit: the time taken does not depend on which key, if any, matched.
        for key in keys where APIKeySecret.constantTimeEquals(key.hash, digest) {
            match = key
        }
        return match
    }

    /// The live key with this id (a dashboard session names its key by id).
    public func key(id: String) -> APIKey? {
        rows.value.lazy.compactMap(\.object).first { $0.id == id }
    }

    public func reload(from repository: APIKeyRepository) async throws {
        try await reload { try await repository.active() }
    }

    /// Serves the keys `read` returns unless a reload that started later has already ended.
    func reload(_ read: () async throws -> [Stored<APIKey>]) async throws {
        try await rows.reload(read)
    }
}

