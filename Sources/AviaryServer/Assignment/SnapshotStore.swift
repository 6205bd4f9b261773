import AviaryCore

/// The configuration snapshot every request reads. Readers load it with one atomic operation,
/// never a lock; a reload swaps in a whole new snapshot, the newest reload's (`Reloaded`).
public final class SnapshotStore: Sendable {
    /// A snapshot with the renderer of its answers, prepared once per reload.
    struct Prepared: Sendable {
        let snapshot: ConfigSnapshot
        let answer: AssignmentAnswer
        init(_ snapshot: ConfigSnapshot) {
            self.snapshot = snapshot
            self.answer = AssignmentAnswer(snapshot)
        }
    }

    private let current = Reloaded(Prepared(.empty))

    public init() {}

    public var snapshot: ConfigSnapshot { current.value.snapshot }

    /// The snapshot and its answer's renderer, read together.
    var prepared: (snapshot: ConfigSnapshot, answer: AssignmentAnswer) {
        let prepared = current.value
        return (prepared.snapshot, prepared.answer)
    }

    /// False until the first snapshot has been read from the database.
    public var isLoaded: Bool { current.isLoaded }

    /// Reads the snapshot with `load` and serves it unless a reload that started later has
    /// already ended.
    public func reload(_ load: () async throws -> ConfigSnapshot) async rethrows {
        try await current.reload { Prepared(try await load()) }
    }
}
