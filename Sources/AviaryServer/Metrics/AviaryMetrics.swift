import AviaryCore
import AviaryPostgres
import Foundation
import Hummingbird
import Prometheus
import Synchronization

/// The server's Prometheus metrics (`GET /metrics`): HTTP requests by route and status and
/// their latency, assignments by experiment and variant, events ingested, the exposure queue,
/// and each rollout's state, step and guardrails.
///
/// Everything lives in one `PrometheusCollectorRegistry` per server (no global metrics system,
/// so several servers can share a process in tests). Assignments are counted per compiled
/// experiment under one lock per request and folded into the registry when scraped, keeping
/// the assignment path free of registry lookups.
final class AviaryMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let assignments = Mutex(AssignmentTally())
    /// The rollout gauges of the last scrape, so a rollout that is gone stops being reported.
    private let rolloutGauges = Mutex([String: [Gauge]]())
    /// Likewise the unreadable objects' gauges, so a repaired object's name disappears.
    private let unreadableGauges = Mutex([Gauge]())

    // MetricNameDescriptor holds only immutable strings but is not marked Sendable.
    static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    nonisolated(unsafe) static let requests = MetricNameDescriptor(
        namespace: "aviary", metricName: "http_requests", unitName: "total", helpText: "HTTP requests by route, method and status")
    nonisolated(unsafe) static let latency = MetricNameDescriptor(
        namespace: "aviary", metricName: "http_request_duration", unitName: "seconds", helpText: "HTTP request latency by route and method")
    nonisolated(unsafe) static let assignmentsTotal = MetricNameDescriptor(
        namespace: "aviary", metricName: "assignments", unitName: "total", helpText: "Assignments served, by experiment and variant")
    nonisolated(unsafe) static let eventsTotal = MetricNameDescriptor(
        namespace: "aviary", metricName: "events_ingested", unitName: "total", helpText: "Events committed by POST /v1/events")
    nonisolated(unsafe) static let queueDepth = MetricNameDescriptor(
        namespace: "aviary", metricName: "exposure_queue", unitName: "depth", helpText: "Exposures waiting to be written")
    nonisolated(unsafe) static let rolloutState = MetricNameDescriptor(
        namespace: "aviary", metricName: "rollout_state", unitName: "", helpText: "1 for the state each rollout is in, 0 for the others")
    nonisolated(unsafe) static let rolloutStep = MetricNameDescriptor(
        namespace: "aviary", metricName: "rollout_step", unitName: "", helpText: "Index of each rollout's current step")
    nonisolated(unsafe) static let rolloutPercent = MetricNameDescriptor(
        namespace: "aviary", metricName: "rollout", unitName: "percent", helpText: "Share of the catch-all split the rolled variant has")
    nonisolated(unsafe) static let guardrailValue = MetricNameDescriptor(
        namespace: "aviary", metricName: "rollout_guardrail", unitName: "value", helpText: "Each guardrail's value over the current step")
    nonisolated(unsafe) static let replicaUp = MetricNameDescriptor(
        namespace: "aviary", metricName: "replica_up", unitName: "", helpText: "1 while the read replica answers, 0 when not (only with AVIARY_DATABASE_REPLICA_URL)")
    nonisolated(unsafe) static let replicaLag = MetricNameDescriptor(
        namespace: "aviary", metricName: "replica_lag", unitName: "seconds", helpText: "The read replica's replay lag when it answers")
    nonisolated(unsafe) static let configUnreadable = MetricNameDescriptor(
        namespace: "aviary", metricName: "config_unreadable", unitName: "", helpText: "1 for each stored object this server's configuration cannot read")
    nonisolated(unsafe) static let noticeAttempts = MetricNameDescriptor(
        namespace: "aviary", metricName: "notice_attempts", unitName: "total", helpText: "Attempts at rollout notices by this server, by outcome")
    nonisolated(unsafe) static let rejectedTotal = MetricNameDescriptor(
        namespace: "aviary", metricName: "rejected", unitName: "total", helpText: "Rows the database refused for their content, dropped so the rest of their batch was written")
    nonisolated(unsafe) static let guardrailOK = MetricNameDescriptor(
        namespace: "aviary", metricName: "rollout_guardrail_ok", unitName: "", helpText: "1 while a guardrail holds, 0 when broken")

    func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        registry.makeCounter(descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: Self.latency, labels: [("route", route), ("method", method)], buckets: Self.latencyBuckets)
            .record(duration)
    }

    /// What the database refused for its content and was dropped, so that the rest of its
    /// batch could be written (`IsolatingWrite`).
    enum Rejected: String { case exposure }

    func recordRejected(_ what: Rejected, count: Int) {
        registry.makeCounter(descriptor: Self.rejectedTotal, labels: [("what", what.rawValue)]).increment(by: Int64(count))
    }

    /// How an attempt at a rollout notice ended (`NoticeDeliverer`).
    enum NoticeOutcome: String { case delivered, failed, gaveUp = "gave_up" }

    func recordNotice(_ outcome: NoticeOutcome) {
        registry.makeCounter(descriptor: Self.noticeAttempts, labels: [("outcome", outcome.rawValue)]).increment()
    }

    func recordEvents(_ count: Int) {
        registry.makeCounter(descriptor: Self.eventsTotal).increment(by: Int64(count))
    }

    /// Counts assignments as served; one lock per request.
    func countAssignments(_ served: some Sequence<Assignment>) {
        assignments.withLock { tally in
            for a in served { tally.add(a) }
        }
    }

    /// The text exposition: folds the assignment tally and sets the gauges first.
    ///
    /// `replica`: whether a read replica is configured, and its lag when it answered.
    /// `unreadable`: the stored objects this server's configuration could not read.
    func render(
        exposureQueue: Int, rollouts: [Experiment], replica: (configured: Bool, lag: Double?) = (false, nil), unreadable: [UnreadableObject] = []
    ) -> String {
        let counts = assignments.withLock { $0.drain() }
        for (key, count) in counts {
            registry.makeCounter(descriptor: Self.assignmentsTotal, labels: [("experiment", key.experiment), ("variant", key.variant)])
                .increment(by: Int64(count))
        }
        registry.makeGauge(descriptor: Self.queueDepth).set(to: Double(exposureQueue))
        if replica.configured {
            registry.makeGauge(descriptor: Self.replicaUp).set(to: replica.lag == nil ? 0 : 1)
            // The last lag measured stays until the replica answers again.
            if let lag = replica.lag { registry.makeGauge(descriptor: Self.replicaLag).set(to: lag) }
        }
        var current: [String: [Gauge]] = [:]
        for experiment in rollouts {
            guard let plan = experiment.definition.rollout, let state = experiment.rolloutState else { continue }
            let e = ("experiment", experiment.key)
            func gauge(_ descriptor: MetricNameDescriptor, _ labels: [(String, String)], _ value: Double) {
                let g = registry.makeGauge(descriptor: descriptor, labels: labels)
                g.set(to: value)
                current[experiment.key, default: []].append(g)
            }
            for phase in RolloutState.Phase.allCases {
                gauge(Self.rolloutState, [e, ("state", phase.rawValue)], phase == state.phase ? 1 : 0)
            }
            gauge(Self.rolloutStep, [e], Double(state.step))
            gauge(Self.rolloutPercent, [e], experiment.definition.rolloutPercent ?? 0)
            for reading in state.guardrails where plan.guardrails.contains(where: { $0.metric == reading.metric }) {
                let labels = [e, ("metric", reading.metric)]
                if let value = reading.value { gauge(Self.guardrailValue, labels, value) }
                gauge(Self.guardrailOK, labels, reading.ok ? 1 : 0)
            }
        }
        let stale = rolloutGauges.withLock { previous in
            defer { previous = current }
            return previous.filter { current[$0.key] == nil }.values.flatMap { $0 }
        }
        for g in stale { registry.unregisterGauge(g) }
        let shown = unreadable.map { object in
            let g = registry.makeGauge(descriptor: Self.configUnreadable, labels: [("kind", object.kind.rawValue), ("key", object.key)])
            g.set(to: 1)
            return g
        }
        let gone = unreadableGauges.withLock { previous in
            defer { previous = shown }
            return previous.filter { old in !shown.contains { $0 === old } }
        }
        for g in gone { registry.unregisterGauge(g) }
        return registry.emitToString()
    }
}

/// Assignments served since the last scrape, per compiled experiment and variant index.
struct AssignmentTally {
    struct Key: Hashable {
        var experiment: String
        var variant: String
    }

    private var byExperiment: [ObjectIdentifier: (experiment: CompiledExperiment, counts: [Int])] = [:]

    mutating func add(_ a: Assignment) {
        let id = ObjectIdentifier(a.experiment)
        if byExperiment[id] == nil {
            // Snapshots are replaced on every configuration write; fold old ones away if nobody scrapes.
            if byExperiment.count > 10_000 { byExperiment.removeAll() }
            byExperiment[id] = (a.experiment, Array(repeating: 0, count: a.experiment.variants.count))
        }
        byExperiment[id]!.counts[a.variantIndex] += 1
    }

    mutating func drain() -> [Key: Int] {
        var result: [Key: Int] = [:]
        for (experiment, counts) in byExperiment.values {
            for (i, n) in counts.enumerated() where n > 0 {
                result[Key(experiment: experiment.key, variant: experiment.variants[i].key), default: 0] += n
            }
        }
        byExperiment.removeAll(keepingCapacity: true)
        return result
    }
}

/// Counts every request by its matched route (the pattern, never the raw path) and times it.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: AviaryMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.recordRequest(
                route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code,
                duration: ContinuousClock.now - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.recordRequest(
                route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status, duration: ContinuousClock.now - start)
            throw error
        }
    }
}

/// `GET /metrics` (open, as Prometheus scrapes it). Rollout states are read from the database
/// with a short deadline; without it the rest is still served.
struct MetricsEndpoint {
    let metrics: AviaryMetrics
    let exposures: ExposureRecorder
    let unreadable: @Sendable () -> [UnreadableObject]
    let experiments: ExperimentRepository
    let reports: ReportSource

    func addRoutes(to router: Router<AviaryRequestContext>) {
        router.get("metrics") { _, _ -> Response in
            let rollouts = (try? await DatabaseDeadline.run(limit: .seconds(1)) { try await experiments.rollouts(activeOnly: false) }) ?? []
            let lag = await reports.replicaLag()
            let text = metrics.render(
                exposureQueue: exposures.queueDepth, rollouts: rollouts, replica: (reports.replica != nil, lag), unreadable: unreadable())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
