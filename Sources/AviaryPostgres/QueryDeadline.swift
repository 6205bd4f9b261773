import PostgresNIO
import Synchronization

/// A time limit on everything a piece of work asks of PostgreSQL (docs/operations.md,
/// "Deadlines"). Inside `within`, every connection the work leases from an `AviaryDatabase`
/// is held by the deadline; when it passes, the work is cancelled (a wait for a connection ends
/// at once) and the connections it holds are closed (a query waiting on a lock, a slow plan or
/// a server that stopped answering fails at once, and PostgreSQL rolls back its transaction).
/// `within` returns only when the work has ended, so it leaves no query behind on a pooled
/// connection: the pool opens a new connection in place of each closed one.
public enum QueryDeadline {
    /// The deadline passed before the work finished.
    public struct Passed: Error, CustomStringConvertible {
        public let limit: Duration
        public var description: String { "the database did not answer within \(limit)" }
    }

    /// `body`'s answer, or `Passed` when the deadline, `limit` from now, passed before it
    /// finished. Work that finished answers with its result even if the deadline passed a
    /// moment after. Deadlines nest: a connection leased inside both is closed by either.
    public static func within<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let bound = Bound(limit: limit, parent: current)
        let outcome = await withTaskGroup(of: Result<T, any Error>?.self) { group -> Result<T, any Error> in
            group.addTask {
                do { return .success(try await $current.withValue(bound) { try await body() }) } catch { return .failure(error) }
            }
            group.addTask {
                do { try await Task.sleep(until: bound.deadline, clock: .continuous) } catch { return nil }
                bound.expire()
                return nil
            }
            var outcome: Result<T, any Error>?
            // Whichever ends first cancels the other: the body's end stops the timer; the
            // deadline's cancels waits for a connection and whatever else listens for it.
            while let next = await group.next() {
                if let next { outcome = next }
                group.cancelAll()
            }
            return outcome!
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw bound.hasPassed ? Passed(limit: limit) : error
        }
    }

    /// The innermost deadline of the running task, if any.
    @TaskLocal static var current: Bound?

    /// `body` on `connection`, held by the current deadlines (if any): closed when one passes.
    /// `AviaryDatabase` calls it for every connection it leases; `body` throws `Passed` at once
    /// when a deadline has already passed.
    nonisolated(nonsending) static func holding<T>(_ connection: PostgresConnection, _ body: () async throws -> T) async throws -> T {
        guard let bound = current else { return try await body() }
        let id = ObjectIdentifier(connection)
        var chain: [Bound] = []
        var next: Bound? = bound
        while let b = next {
            guard b.hold(connection, id: id) else {
                for held in chain { held.release(id) }
                throw Passed(limit: b.limit)
            }
            chain.append(b)
            next = b.parent
        }
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        // A connection a deadline closed goes back to the pool only once closed, so that the
        // pool does not lend it again meanwhile.
        var closedByDeadline = false
        for held in chain where !held.release(id) { closedByDeadline = true }
        if closedByDeadline { try? await connection.closeFuture.get() }
        return try outcome.get()
    }

    /// One deadline: the connections leased under it, closed when it passes.
    final class Bound: Sendable {
        let limit: Duration
        let deadline: ContinuousClock.Instant
        let parent: Bound?
        private let state = Mutex<(passed: Bool, held: [ObjectIdentifier: PostgresConnection])>((false, [:]))

        init(limit: Duration, parent: Bound?) {
            self.limit = limit
            self.deadline = .now + limit
            self.parent = parent
        }

        var hasPassed: Bool { state.withLock { $0.passed } }

        /// Holds `connection`; false when the deadline has passed (nothing is held then).
        func hold(_ connection: PostgresConnection, id: ObjectIdentifier) -> Bool {
            state.withLock { state in
                guard !state.passed else { return false }
                state.held[id] = connection
                return true
            }
        }

        /// Whether the connection was still held: false when the deadline took it to close it.
        @discardableResult
        func release(_ id: ObjectIdentifier) -> Bool {
            state.withLock { $0.held.removeValue(forKey: id) } != nil
        }

        /// Marks the deadline passed and closes every connection held.
        func expire() {
            let held = state.withLock { state in
                state.passed = true
                defer { state.held = [:] }
                return Array(state.held.values)
            }
            for connection in held { let _: EventLoopFuture<Void> = connection.close() }
        }
    }
}
