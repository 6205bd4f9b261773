import AviaryCore
import AviaryPostgres
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Records first exposures off the request path: requests hand them over in memory, a
/// background loop writes them in batches, and graceful shutdown flushes what is left.
/// Units seen recently are skipped before they reach the queue; the database keeps the
/// earliest exposure of each unit in any case.
public final class ExposureRecorder: Service, Sendable {
    struct State {
        var pending: [Exposure] = []
        var recent: Set<Int> = []
        var dropped = 0
    }

    /// Recent (experiment, unit) pairs remembered to skip repeats; cleared when full.
    static let recentCapacity = 1_000_000
    /// Exposures waiting for the database; beyond this they are dropped and counted.
    static let maxPending = 200_000
    static let batchSize = 5_000

    private let state = Mutex(State())
    private let repository: ExposureRepository
    private let interval: Duration
    private let logger: Logger

    public init(repository: ExposureRepository, interval: Duration = .milliseconds(200), logger: Logger) {
        self.repository = repository
        self.interval = interval
        self.logger = logger
    }

    /// Queues the exposures among `assignments`; cheap enough for every request.
    func record(_ assignments: some Sequence<Assignment>, context: AssignmentContext, at time: Date = Date()) {
        // Hash first and build exposures only for pairs not seen recently: after warm-up a
        // request costs one lock and a set lookup per experiment.
        var candidates: [(key: Int, assignment: Assignment, unit: String)] = []
        for a in assignments where a.inExperiment {
            guard let unit = a.unit else { continue }
            var hasher = Hasher()
            hasher.combine(a.experiment.key)
            hasher.combine(unit)
            candidates.append((hasher.finalize(), a, unit))
        }
        guard !candidates.isEmpty else { return }
        let fresh: [Int] = state.withLock { state in
            if state.recent.count + candidates.count > Self.recentCapacity { state.recent.removeAll(keepingCapacity: true) }
            return candidates.indices.filter { state.recent.insert(candidates[$0].key).inserted }
        }
        guard !fresh.isEmpty else { return }
        let country = context.attributes["country"]?.text
        let appVersion = context.attributes["app_version"]?.text
        let exposures = fresh.map { i in
            let c = candidates[i]
            return Exposure(experiment: c.assignment.experiment.key, unit: c.unit, variant: c.assignment.variantKey, at: time, country: country, appVersion: appVersion)
        }
        state.withLock { state in
            let room = max(0, Self.maxPending - state.pending.count)
            state.pending.append(contentsOf: exposures.prefix(room))
            state.dropped += max(0, exposures.count - room)
        }
    }

    public var queueDepth: Int { state.withLock { $0.pending.count } }

    public func run() async throws {
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: interval)
                await flush()
            }
        } onGracefulShutdown: {}
        await flush()
    }

    /// Writes everything queued now; on failure the batch goes back to the queue for the next try.
    public func flush() async {
        while true {
            let (batch, dropped): ([Exposure], Int) = state.withLock { state in
                let batch = Array(state.pending.prefix(Self.batchSize))
                state.pending.removeFirst(batch.count)
                defer { state.dropped = 0 }
                return (batch, state.dropped)
            }
            if dropped > 0 { logger.error("exposure queue full; dropped exposures", metadata: ["count": "\(dropped)"]) }
            guard !batch.isEmpty else { return }
            do {
                try await repository.insert(batch)
            } catch {
                logger.warning("could not write exposures; will retry", metadata: ["error": "\(String(reflecting: error))", "count": "\(batch.count)"])
                state.withLock { state in state.pending.insert(contentsOf: batch, at: 0) }
                return
            }
        }
    }
}
