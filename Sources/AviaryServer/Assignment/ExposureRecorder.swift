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
        var candidates: [(Int, Exposure)] = []
        for a in assignments where a.inExperiment {
            guard let unit = a.unit else { continue }
            var hasher = Hasher()
            hasher.combine(a.experiment.key)
            hasher.combine(unit)
            candidates.append(
                (hasher.finalize(),
                    Exposure(
                        experiment: a.experiment.key, unit: unit, variant: a.variantKey, at: time, country: context.attributes["country"]?.text,
                        appVersion: context.attributes["app_version"]?.text)))
        }
        guard !candidates.isEmpty else { return }
        state.withLock { state in
            if state.recent.count + candidates.count > Self.recentCapacity { state.recent.removeAll(keepingCapacity: true) }
            for (key, exposure) in candidates where state.recent.insert(key).inserted {
                if state.pending.count < Self.maxPending { state.pending.append(exposure) } else { state.dropped += 1 }
            }
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
