import AviaryCore
import AviaryPostgres
import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Drives rollouts (SPEC 9). One replica at a time leads: it holds a PostgreSQL session
/// advisory lock on a connection of its own, and every `tick` decides each running rollout with
/// `RolloutMachine` from the guardrails measured over the current step. The others retry the
/// lock every tick, so when the leader dies (its session, and the lock, end with it) another
/// takes over within a tick or two.
struct RolloutController: Service {
    let database: AviaryDatabase
    let tick: Duration
    let notifier: RolloutNotifier
    let logger: Logger

    /// The advisory lock key of rollout leadership ("aviary.r" in ASCII).
    static let leaderLock: Int64 = 0x6176_6961_7279_2E72

    func run() async throws {
        await cancelWhenGracefulShutdown { await loop() }
    }

    private func loop() async {
        while !Task.isCancelled {
            do {
                try await database.client.withConnection { connection in
                    guard try await Self.tryLock(connection, logger: logger) else { return }
                    logger.info("leading rollouts")
                    defer { logger.info("no longer leading rollouts") }
                    do {
                        while !Task.isCancelled {
                            await tickOnce()
                            // The lock lives as long as this session. No query checks it: one sent
                            // on a connection the server has terminated can wait forever.
                            guard !connection.isClosed else { throw LeadershipLost() }
                            try await Task.sleep(for: tick)
                        }
                    } catch {
                        // Ending the session releases the lock, whatever state the connection is in.
                        try? await connection.close()
                        throw error
                    }
                    try? await connection.close()
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("rollout leadership lost or not reachable", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            }
            do { try await Task.sleep(for: tick) } catch { return }
        }
    }

    struct LeadershipLost: Error {}

    static func tryLock(_ connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await connection.query("SELECT pg_try_advisory_lock(\(leaderLock))", logger: logger).value(Bool.self) ?? false
    }

    /// Decides and applies every active rollout once. A failure on one does not stop the others.
    func tickOnce(now: Date = Date()) async {
        let experiments: [Experiment]
        do {
            experiments = try await database.experiments.rollouts(activeOnly: true)
        } catch {
            logger.warning("could not read rollouts", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            return
        }
        for experiment in experiments {
            do {
                try await decide(experiment, now: now)
            } catch {
                logger.warning(
                    "rollout tick failed", metadata: ["experiment": "\(experiment.key)", "error": "\(String(reflecting: error).prefix(300))"])
            }
        }
    }

    private func decide(_ experiment: Experiment, now: Date) async throws {
        guard let plan = experiment.definition.rollout, let state = experiment.rolloutState else { return }
        let (observations, rolledUnits) = try await measure(experiment.definition, plan: plan, since: state.stepStartedAt)
        let decision = RolloutMachine.decide(
            plan: plan, state: state, now: now, observations: observations, rolledUnits: rolledUnits, approved: state.approved)
        let readings = RolloutMachine.readings(plan, observations)
        let (applied, updated) = try await database.experiments.applyRollout(
            experiment.key, decidedAt: experiment.revision, decision: decision, readings: readings, now: now)
        guard applied, let updated else { return }
        switch decision {
        case .wait: break
        default:
            logger.info("rollout \(experiment.key): \(decision)")
        }
        switch decision {
        case .rollback(let reason): notifier.notify(updated, event: "rolled_back", reason: reason)
        case .pause(let reason): notifier.notify(updated, event: "paused", reason: reason)
        default: break
        }
    }

    /// Guardrail metrics of the rolled variant and the control over the current step, each
    /// event counted for the variant its unit was served at the event's time, and the units
    /// counted in the rolled variant with at least one event during the step.
    private func measure(
        _ definition: ExperimentDefinition, plan: RolloutPlan, since: Date
    ) async throws -> ([String: GuardrailObservation], Int) {
        let keys = Set(plan.guardrails.map(\.metric))
        let metrics = try await database.metrics.list().filter { keys.contains($0.key) }
        var scoped = definition
        scoped.metrics = ExperimentMetrics(guardrails: metrics.map(\.key))
        let query = ReportQuery(from: since, attribution: .servedAt)
        let aggregates = try await database.reports.aggregate(experiment: scoped, metrics: metrics, query: query)
        let report = ReportBuilder.build(
            experiment: scoped, metrics: Dictionary(uniqueKeysWithValues: metrics.map { ($0.key, $0) }), query: query,
            exposedUnits: aggregates.exposedUnits, aggregates: aggregates.groups)
        func group(_ variant: String) -> ReportGroup? { report.groups.first { $0.key.variant == variant } }
        var observations: [String: GuardrailObservation] = [:]
        for metric in metrics {
            let rolled = group(plan.variant)?.metrics.first { $0.key == metric.key }
            let control = group(definition.control)?.metrics.first { $0.key == metric.key }
            observations[metric.key] = GuardrailObservation(value: rolled?.mean, controlValue: control?.mean)
        }
        return (observations, aggregates.exposedUnits[plan.variant, default: 0])
    }
}

/// Sends a rollout's JSON notice to its `notify_url`, off the rollback's path: a failing
/// receiver is retried with backoff and never holds the rollback up.
struct RolloutNotifier: Sendable {
    let logger: Logger
    var attempts = 6
    var firstDelay: Duration = .milliseconds(500)
    var timeout: TimeInterval = 5

    func notify(_ experiment: Experiment, event: String, reason: String?) {
        guard let plan = experiment.definition.rollout, let target = plan.notifyURL, let url = URL(string: target) else { return }
        var payload: [String: JSON] = [
            "experiment": .string(experiment.key),
            "event": .string(event),
            "reason": reason.map(JSON.string) ?? .null,
            "variant": .string(plan.variant),
            "status": .string(experiment.status.rawValue),
            "at": .string(Timestamp.format(Date())),
        ]
        if let state = experiment.rolloutState { payload["rollout_state"] = state.json(plan: plan) }
        let body = JSON.object(payload).canonicalData()
        let (attempts, firstDelay, timeout, logger) = (attempts, firstDelay, timeout, logger)
        Task.detached {
            var delay = firstDelay
            for attempt in 1...attempts {
                var request = URLRequest(url: url, timeoutInterval: timeout)
                request.httpMethod = "POST"
                request.setValue("application/json", forHTTPHeaderField: "Content-Type")
                request.setValue("aviary", forHTTPHeaderField: "User-Agent")
                request.httpBody = body
                do {
                    let (_, response) = try await URLSession.shared.data(for: request)
                    if let status = (response as? HTTPURLResponse)?.statusCode, (200..<300).contains(status) { return }
                    logger.warning("rollout webhook answered \((response as? HTTPURLResponse)?.statusCode ?? 0)", metadata: ["attempt": "\(attempt)"])
                } catch {
                    logger.warning("rollout webhook failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                }
                try? await Task.sleep(for: delay)
                delay *= 2
            }
            logger.error("rollout webhook gave up", metadata: ["experiment": "\(experiment.key)", "url": "\(target)"])
        }
    }
}
