import Atomics

/// A value read from the database by reloads that run concurrently — one after each write, one
/// per notification — and may end in any order. Each reload is numbered before it reads; a
/// reload numbered later started reading after an earlier one started, so it sees at least the
/// writes that one was started for. The value kept is the one of the highest-numbered reload
/// that has ended: a slow reload never brings back a value older than what a write's own reload
/// served (docs/api.md, "Assignment": a write answers after its reload). Readers load it with
/// one atomic operation, never a lock.
final class Reloaded<Value: Sendable>: Sendable {
    final class Box: AtomicReference, Sendable {
        let value: Value
        let reload: Int
        init(_ value: Value, reload: Int) {
            self.value = value
            self.reload = reload
        }
    }

    private let current: ManagedAtomic<Box>
    private let reloads = ManagedAtomic<Int>(0)

    /// `initial` is served until the first reload ends.
    init(_ initial: Value) {
        current = ManagedAtomic(Box(initial, reload: 0))
    }

    var value: Value { current.load(ordering: .acquiring).value }

    /// False until a reload has ended.
    var isLoaded: Bool { current.load(ordering: .acquiring).reload > 0 }

    /// A numbered reload: `read` from the database, then `replace`.
    func reload(_ read: () async throws -> Value) async rethrows {
        let number = nextReload()
        replace(with: try await read(), reload: number)
    }

    /// Numbers a reload; taken before it reads the database.
    private func nextReload() -> Int {
        reloads.wrappingIncrementThenLoad(ordering: .relaxed)
    }

    /// Serves `value`, read by reload number `reload`, unless a later-numbered reload has
    /// already replaced it.
    private func replace(with value: Value, reload: Int) {
        let box = Box(value, reload: reload)
        var served = current.load(ordering: .acquiring)
        while served.reload < reload {
            let (exchanged, original) = current.compareExchange(expected: served, desired: box, ordering: .acquiringAndReleasing)
            if exchanged { break }
            served = original
        }
    }
}
