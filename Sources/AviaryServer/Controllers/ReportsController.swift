import AviaryCore
import AviaryPostgres
import HTTPTypes
import Hummingbird

/// `GET /v1/experiments/{key}/report` and `report.csv` (docs/api.md, "Reports").
struct ReportsController {
    let experiments: ExperimentRepository
    let metrics: ConfigObjectStore<Metric>
    let source: ReportSource

    /// A report scans the experiment's events; its routes get longer than the usual request
    /// deadline (PostgreSQL stops its statements after 55 s).
    static let deadline: Duration = .seconds(60)

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(":key/report") { request, context in
            let report = try await report(request, context)
            var response = Response.json(report.json)
            response.headers[Self.sourceHeader] = report.source
            return response
        }
        group.get(":key/report.csv") { request, context in
            Self.csvResponse(try await report(request, context))
        }
    }

    /// The CSV download of a report. Experiment keys follow the key grammar, so the file name
    /// needs no escaping.
    static func csvResponse(_ report: Report) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8; header=present",
                .contentDisposition: "attachment; filename=\"\(report.experiment)-report.csv\"",
                sourceHeader: report.source,
            ],
            body: .init(byteBuffer: ByteBuffer(string: report.csv)))
    }

    /// Which database answered a report (`primary` or `replica`), for the CSV that has no
    /// `source` field; the JSON report carries it too.
    static let sourceHeader = HTTPField.Name("Aviary-Report-Source")!

    private func report(_ request: Request, _ context: AviaryRequestContext) async throws -> Report {
        let key = try context.existingKey(of: "experiment")
        return try await report(key: key, query: Self.query(request))
    }

    /// The report's options from the query string (`by`, `from`, `to`); `400
    /// invalid_report_query` naming every bad parameter.
    static func query(_ request: Request) throws -> ReportQuery {
        let parameters = request.uri.queryParameters
        switch ReportQuery.parse(by: parameters.get("by"), from: parameters.get("from"), to: parameters.get("to")) {
        case .success(let query): return query
        case .failure(let failure): throw AviaryError.invalid(code: "invalid_report_query", issues: failure.issues)
        }
    }

    /// The report of experiment `key` (the JSON route's and both CSVs').
    func report(key: String, query: ReportQuery) async throws -> Report {
        try await report(of: experiments.get(key), query: query)
    }

    /// The report of an experiment already read (the dashboard's page, which shows it too); its
    /// `rollout.history` is the one the page lists.
    func report(of experiment: Experiment, query: ReportQuery) async throws -> Report {
        let ordered = try await metrics.forReport(of: experiment.definition)
        let (aggregates, place, lag) = try await source.aggregate(experiment: experiment.definition, metrics: ordered, query: query)
        var rollout: JSON?
        if let plan = experiment.definition.rollout {
            rollout = [
                "state": experiment.rolloutState?.json(plan: plan) ?? .null,
                "history": .array(try await experiments.rolloutHistory(experiment.key)),
            ]
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
