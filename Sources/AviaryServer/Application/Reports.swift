import AviaryCore
import AviaryPostgres

/// Reports (docs/api.md, "Reports"): the aggregates from wherever `ReportSource` reads them
/// (the replica while it keeps up), built into a report with the rollout's state and history.
/// The report routes and the dashboard's page and CSV all ask here.
struct Reports: Sendable {
    let experiments: ExperimentRepository
    let metrics: ConfigObjectStore<Metric>
    let source: ReportSource

    /// A report scans the experiment's events; what shows one gets longer than the usual
    /// request deadline (PostgreSQL stops its statements after 55 s).
    static let deadline: Duration = .seconds(60)

    /// The report of experiment `key`.
    func report(key: String, query: ReportQuery) async throws -> Report {
        try await report(of: experiments.get(key), query: query)
    }

    /// The report of an experiment already read (the dashboard's page, which shows it too); its
    /// `rollout.history` is the one the page lists.
    func report(of experiment: Experiment, query: ReportQuery) async throws -> Report {
        let ordered = try await metrics.forReport(of: experiment.definition)
        let (aggregates, place, lag) = try await source.aggregate(experiment: experiment.definition, metrics: ordered, query: query)
        var rollout: ReportRollout?
        if let plan = experiment.definition.rollout {
            rollout = ReportRollout(plan: plan, state: experiment.rolloutState, history: try await experiments.rolloutHistory(experiment.key))
        }
        var report = ReportBuilder.build(
            experiment: experiment.definition, metrics: Dictionary(uniqueKeysWithValues: ordered.map { ($0.key, $0) }),
            query: query, exposedUnits: aggregates.exposedUnits, multipleExposures: aggregates.multipleExposures,
            aggregates: aggregates.groups, rollout: rollout)
        report.source = place.rawValue
        report.replicaLagSeconds = lag
        return report
    }
}
