import AviaryCore
import AviaryPostgres
import Foundation
import Logging
import ServiceLifecycle

/// Drives rollouts (docs/api.md, "Rollouts"). One replica at a time leads: it holds the leader
/// lock (`AviaryDatabase.withLeaderLock`), and every `tick` decides each running rollout with
/// `RolloutMachine` from the guardrails measured over the current step, then applies the
/// decision as a command. The others try the lock every tick, so when the leader dies (its
/// session, and the lock, end with it) another takes over within a tick or two. A tick that
/// does not finish within `tickLimit` (a lock held elsewhere, a database that stopped
/// answering) is cut there (`QueryDeadline`) and the lock given up, so that another server can
/// lead; what the tick wrote is committed or not at all, and a notice is written only with its
/// change (the outbox), so none is sent twice.
struct RolloutLeader: Service {
    /// Where a decision is applied, as a REST route's or a dashboard button's command is.
    let changes: Changes
    /// Where guardrails are measured: the read replica while it keeps up, else `database`.
    let reports: ReportSource
    let tick: Duration
    var tickLimit: Duration = Self.tickLimit
    let logger: Logger

    /// How long one tick may wait for PostgreSQL, every rollout together (docs/operations.md,
    /// "Deadlines").
    static let tickLimit: Duration = .seconds(30)

    var database: AviaryDatabase { changes.database }

    func run() async throws {
        await everyInterval(tick, startingAtOnce: true) { await lead() }
    }

    /// Leads while the lock is held; returns when another server leads, the session ends or
    /// the server shuts down.
    private func lead() async {
        do {
            _ = try await database.withLeaderLock { isHeld in
                logger.info("leading rollouts")
                defer { logger.info("no longer leading rollouts") }
                while !Task.isCancelled, !Task.isShuttingDownGracefully {
                    try await QueryDeadline.within(tickLimit) { [self] in
                        await tickOnce()
                        // A tick cut by its deadline: the caught failures of its rollouts end here.
                        try Task.checkCancellation()
                    }
                    guard isHeld() else { throw LeadershipLost() }
                    do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) } } catch { return }
                }
            }
        } catch let error as QueryDeadline.Passed {
            logger.warning("rollout tick did not finish in time; leadership given up", metadata: ["error": "\(error)"])
        } catch {
            logger.warning("rollout leadership lost or not reachable", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
        }
    }

    struct LeadershipLost: Error {}

    /// Decides and applies every active rollout once. A failure on one does not stop the others.
    func tickOnce(now: Date = Date()) async {
        let experiments: [Experiment]
        do {
            experiments = try await database.experiments.rollouts(activeOnly: true)
        } catch {
            guard !Task.isCancelled else { return }  // cut by the tick's deadline, which `lead` logs
            logger.warning("could not read rollouts", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            return
        }
        for experiment in experiments {
            do {
                try await decide(experiment, now: now)
            } catch {
                guard !Task.isCancelled else { return }
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
        let command = ExperimentCommand.decideRollout(decision, readings: readings, decidedAt: experiment.revision)
        // A rollback's or pause's notice is written with it (the outbox) and delivered by `NoticeDeliverer`.
        guard try await changes.experiment(command, key: experiment.key, by: .server, now: now) != nil else { return }
        switch decision {
        case .wait: break
        default:
            logger.info("rollout \(experiment.key): \(decision)")
        }
    }

    /// Guardrail metrics of the rolled variant and the control over the current step, each
    /// event counted for the variant its unit was served at the event's time, with the
    /// always-valid interval of their difference (sequential guardrails), and the units counted
    /// in the rolled variant with at least one event during the step.
    private func measure(
        _ definition: ExperimentDefinition, plan: RolloutPlan, since: Date
    ) async throws -> ([String: GuardrailObservation], Int) {
        let keys = Set(plan.guardrails.map(\.metric))
        let metrics = try await database.metrics.list().filter { keys.contains($0.key) }
        var scoped = definition
        scoped.metrics = ExperimentMetrics(guardrails: metrics.map(\.key))
        scoped.analysis = AnalysisSettings(sequential: true, sequentialTuning: definition.analysis.sequentialTuning)
        let query = ReportQuery(from: since, attribution: .servedAt)
        let aggregates = try await reports.aggregate(experiment: scoped, metrics: metrics, query: query).aggregates
        let report = ReportBuilder.build(
            experiment: scoped, metrics: Dictionary(uniqueKeysWithValues: metrics.map { ($0.key, $0) }), query: query,
            exposedUnits: aggregates.exposedUnits, aggregates: aggregates.groups)
        let observations = GuardrailObservation.of(report, variant: plan.variant, metrics: metrics.map(\.key))
        return (observations, aggregates.exposedUnits[plan.variant, default: 0])
    }
}
