import Atomics
import AviaryCore

/// The configuration snapshot every request reads. Readers load it with one atomic operation,
/// never a lock; a reload swaps in a whole new snapshot.
public final class SnapshotStore: Sendable {
    /// A snapshot with the renderer of its answers, prepared once per reload, and the number
    /// of the reload that read it.
    final class Box: AtomicReference, Sendable {
        let snapshot: ConfigSnapshot
        let answer: AssignmentAnswer
        let reload: Int
        init(_ snapshot: ConfigSnapshot, reload: Int) {
            self.snapshot = snapshot
            self.answer = AssignmentAnswer(snapshot)
            self.reload = reload
        }
    }

    private let current = ManagedAtomic<Box>(Box(.empty, reload: 0))
    private let loaded = ManagedAtomic<Bool>(false)
    private let reloads = ManagedAtomic<Int>(0)

    public init() {}

    public var snapshot: ConfigSnapshot { current.load(ordering: .acquiring).snapshot }

    /// The snapshot and its answer's renderer, read together.
    var prepared: (snapshot: ConfigSnapshot, answer: AssignmentAnswer) {
        let box = current.load(ordering: .acquiring)
        return (box.snapshot, box.answer)
    }

    /// False until the first snapshot has been read from the database.
    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }

    /// Numbers a reload, taken before it reads the database. Reloads run concurrently (one after
    /// each configuration write, one per notification) and may end in any order; a reload
    /// numbered later started reading after an earlier one started, so it sees at least the
    /// writes that one was started for.
    public func nextReload() -> Int {
        reloads.wrappingIncrementThenLoad(ordering: .relaxed)
    }

    /// Serves `snapshot`, read by reload number `reload`, unless a later-numbered reload has
    /// already replaced it: a slow reload never brings back a configuration older than what a
    /// write's own reload served (docs/api.md, "Assignment": a write answers after its reload).
    public func replace(with snapshot: ConfigSnapshot, reload: Int) {
        let box = Box(snapshot, reload: reload)
        var served = current.load(ordering: .acquiring)
        while served.reload < reload {
            let (exchanged, original) = current.compareExchange(expected: served, desired: box, ordering: .acquiringAndReleasing)
            if exchanged { break }
            served = original
        }
        loaded.store(true, ordering: .releasing)
    }
}
