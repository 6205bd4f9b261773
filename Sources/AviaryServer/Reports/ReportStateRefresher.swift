import AviaryCore
import AviaryPostgres
import Logging
import ServiceLifecycle

/// Keeps the report state of running experiments up to date (`ReportRepository.refreshState`):
/// every `interval`, each running experiment's state is rebuilt when missing or made for other
/// metric definitions, else refolded with the units changed since its watermark. Every replica
/// runs one; a per-experiment lock has one of them refresh at a time. Reports are exact without
/// it: a state only spares them reading every event.
struct ReportStateRefresher: Service {
    let database: AviaryDatabase
    let interval: Duration
    let logger: Logger

    /// How long a refresh waits for the list of running experiments, and one experiment's
    /// refresh for PostgreSQL (a rebuild of a million units takes seconds, BENCHMARKS.md;
    /// docs/operations.md, "Deadlines").
    static let listLimit: Duration = .seconds(10)
    static let refreshLimit: Duration = .seconds(300)

    func run() async throws {
        await everyInterval(interval) { await refreshAll() }
    }

    func refreshAll() async {
        let running: [Experiment]
        do {
            running = try await QueryDeadline.within(Self.listLimit) { [database] in
                try await database.experiments.list(status: .running, includeArchived: false)
            }
        } catch {
            logger.warning("could not list experiments for report refresh", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            return
        }
        for experiment in running where !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let outcome = try await QueryDeadline.within(Self.refreshLimit) { [database] in
                    let metrics = try await database.metrics.forReport(of: experiment.definition)
                    return try await database.reports.refreshState(experiment: experiment.definition, metrics: metrics)
                }
                if case .rebuilt(let units) = outcome {
                    logger.info("report state rebuilt", metadata: ["experiment": "\(experiment.key)", "units": "\(units)"])
                }
            } catch {
                logger.warning(
                    "report state refresh failed", metadata: ["experiment": "\(experiment.key)", "error": "\(String(reflecting: error).prefix(300))"])
            }
        }
    }
}
