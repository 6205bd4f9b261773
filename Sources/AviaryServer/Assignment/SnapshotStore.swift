import Atomics
import AviaryCore

/// The configuration snapshot every request reads. Readers load it with one atomic operation,
/// never a lock; a reload swaps in a whole new snapshot.
public final class SnapshotStore: Sendable {
    /// A snapshot with the renderer of its answers, prepared once per reload.
    final class Box: AtomicReference, Sendable {
        let snapshot: ConfigSnapshot
        let answer: AssignmentAnswer
        init(_ snapshot: ConfigSnapshot) {
            self.snapshot = snapshot
            self.answer = AssignmentAnswer(snapshot)
        }
    }

    private let current = ManagedAtomic<Box>(Box(.empty))
    private let loaded = ManagedAtomic<Bool>(false)

    public init() {}

    public var snapshot: ConfigSnapshot { current.load(ordering: .acquiring).snapshot }

    /// The snapshot and its answer's renderer, read together.
    var prepared: (snapshot: ConfigSnapshot, answer: AssignmentAnswer) {
        let box = current.load(ordering: .acquiring)
        return (box.snapshot, box.answer)
    }

    /// False until the first snapshot has been read from the database.
    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }

    public func replace(with snapshot: ConfigSnapshot) {
        current.store(Box(snapshot), ordering: .releasing)
        loaded.store(true, ordering: .releasing)
    }
}
