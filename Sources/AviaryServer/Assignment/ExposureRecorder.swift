import AviaryCore
import AviaryPostgres
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Records exposures off the request path: requests hand them over in memory, a background
/// loop writes them in batches, and graceful shutdown flushes what is left. The recorder
/// remembers the last variant it recorded for each recent (experiment, unit), so a unit served
/// the same variant again costs a lookup and no write: writes follow changes of variant. The
/// database keeps each variant's earliest exposure in any case (`ExposureRepository`).
final class ExposureRecorder: Service, Sendable {
    struct State {
        /// (experiment, unit) pairs per generation; at most twice this many are remembered.
        var capacity = 500_000
        var pending: [Exposure] = []
        /// Hash of (experiment, unit) → hash of the variant last recorded, in two generations:
        /// when `recent` is full it becomes `older` and the oldest generation is forgotten, so
        /// units seen lately stay remembered.
        var recent: [Int: Int] = [:]
        var older: [Int: Int] = [:]
        var dropped = 0

        /// Whether `variant` is news for `unit`: not the variant last recorded. Remembers it.
        mutating func isChange(_ unit: Int, _ variant: Int) -> Bool {
            let last = recent[unit]
            if last == variant { return false }
            remember(unit, variant)
            return (last ?? older[unit]) != variant
        }

        mutating func remember(_ unit: Int, _ variant: Int) {
            if recent.count >= capacity, recent[unit] == nil {
                swap(&recent, &older)
                recent.removeAll(keepingCapacity: true)
            }
            recent[unit] = variant
        }
    }

    /// Exposures waiting for the database; beyond this they are dropped and counted.
    static let maxPending = 200_000
    static let batchSize = 5_000
    /// How long one batch's write may take before it is cut and tried again.
    static let writeLimit: Duration = .seconds(10)

    private let state = Mutex(State())
    private let repository: ExposureRepository
    private let interval: Duration
    private let metrics: AviaryMetrics?
    private let logger: Logger

    init(repository: ExposureRepository, interval: Duration = .milliseconds(200), metrics: AviaryMetrics? = nil, logger: Logger) {
        self.repository = repository
        self.interval = interval
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues the exposures among `assignments` whose variant changed; cheap enough for every
    /// request.
    func record(_ assignments: some Sequence<Assignment>, context: AssignmentContext, at time: Date = Date()) {
        // Hash first and build exposures only for changes: after warm-up a request costs one
        // lock and a dictionary lookup per experiment.
        var candidates: [(unitKey: Int, variantKey: Int, assignment: Assignment, unit: String)] = []
        for a in assignments where a.inExperiment {
            guard let unit = a.unit else { continue }
            var hasher = Hasher()
            hasher.combine(a.experiment.key)
            hasher.combine(unit)
            candidates.append((hasher.finalize(), a.variantKey.hashValue, a, unit))
        }
        guard !candidates.isEmpty else { return }
        let changed: [Int] = state.withLock { state in
            candidates.indices.filter { state.isChange(candidates[$0].unitKey, candidates[$0].variantKey) }
        }
        guard !changed.isEmpty else { return }
        let country = context.attributes["country"]?.text
        let appVersion = context.attributes["app_version"]?.text
        let exposures = changed.map { i in
            let c = candidates[i]
            return Exposure(experiment: c.assignment.experiment.key, unit: c.unit, variant: c.assignment.variantKey, at: time, country: country, appVersion: appVersion)
        }
        state.withLock { state in
            let room = max(0, Self.maxPending - state.pending.count)
            state.pending.append(contentsOf: exposures.prefix(room))
            state.dropped += max(0, exposures.count - room)
            // A dropped change is forgotten, so the unit's next request queues it again.
            for i in changed.dropFirst(room) { state.recent[candidates[i].unitKey] = nil }
        }
    }

    public var queueDepth: Int { state.withLock { $0.pending.count } }

    /// Counts and logs exposures the database refused, once per experiment and flush; the log
    /// names the experiment, never the unit (it may be a person's id, or the hostile text itself).
    private func reject(_ refused: [Exposure], of batchSize: Int) {
        guard !refused.isEmpty else { return }
        metrics?.recordRejected(.exposure, count: refused.count)
        for (experiment, count) in Dictionary(grouping: refused, by: \.experiment).mapValues(\.count).sorted(by: { $0.key < $1.key }) {
            logger.error(
                "the database refused exposures; dropped them and wrote the rest of their batch",
                metadata: ["experiment": "\(experiment.prefix(80))", "count": "\(count)", "batch": "\(batchSize)"])
        }
    }

    public func run() async throws {
        await everyInterval(interval) { await flush() }
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
                // A write on a connection the database cut as it was sent can wait without end,
                // and the recorder, its queue and graceful shutdown with it. Past the limit it is
                // cut (its connection closed, `QueryDeadline`) and the batch written again:
                // exposures merge, so a write that lands twice changes nothing. Exposures the
                // database refuses for what they hold are set apart and dropped; the rest of
                // their batch is written.
                let refused = try await IsolatingWrite.write(batch) { [repository] part in
                    try await QueryDeadline.within(Self.writeLimit) { try await repository.record(part) }
                }
                reject(refused, of: batch.count)
            } catch {
                logger.warning("could not write exposures; will retry", metadata: ["error": "\(String(reflecting: error))", "count": "\(batch.count)"])
                state.withLock { state in state.pending.insert(contentsOf: batch, at: 0) }
                return
            }
        }
    }
}
