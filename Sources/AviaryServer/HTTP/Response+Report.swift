import AviaryCore
import HTTPTypes
import Hummingbird

extension Response {
    /// The CSV download of a report (the report route's and the dashboard's). Experiment keys
    /// follow the key grammar, so the file name needs no escaping.
    static func csv(_ report: Report) -> Response {
        Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8; header=present",
                .contentDisposition: "attachment; filename=\"\(report.experiment)-report.csv\"",
                .aviaryReportSource: report.source,
            ],
            body: .init(byteBuffer: ByteBuffer(string: report.csv)))
    }
}

extension HTTPField.Name {
    /// Which database answered a report (`primary` or `replica`), for the CSV that has no
    /// `source` field; the JSON report carries it too.
    static let aviaryReportSource = HTTPField.Name("Aviary-Report-Source")!
}

extension ReportQuery {
    /// The report's options from the query string (`by`, `from`, `to`); `400
    /// invalid_report_query` naming every bad parameter.
    init(_ request: Request) throws {
        let parameters = request.uri.queryParameters
        switch ReportQuery.parse(by: parameters.get("by"), from: parameters.get("from"), to: parameters.get("to")) {
        case .success(let query): self = query
        case .failure(let failure): throw AviaryError.invalid(code: "invalid_report_query", issues: failure.issues)
        }
    }
}
