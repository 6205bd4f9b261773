import AviaryCore
import AviaryPostgres
import HTTPTypes
import Hummingbird

/// `GET /v1/experiments/{key}/report` and `report.csv` (docs/api.md, "Reports").
struct ReportsController {
    let reports: Reports

    func addRoutes(to group: RouterGroup<AviaryRequestContext>) {
        group.get(":key/report") { request, context in
            let report = try await report(request, context)
            var response = Response.json(report.json)
            response.headers[.aviaryReportSource] = report.source
            return response
        }
        group.get(":key/report.csv") { request, context in
            Response.csv(try await report(request, context))
        }
    }

    private func report(_ request: Request, _ context: AviaryRequestContext) async throws -> Report {
        let key = try context.existingKey(of: "experiment")
        return try await reports.report(key: key, query: ReportQuery(request))
    }
}
