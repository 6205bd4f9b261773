import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct MetricAPITests {
    @Test(arguments: [
        ["event": "answer_rating", "kind": "mean"],
        ["event": "feedback", "kind": "proportion", "where": ["eq": 1]],
        ["kind": "ratio", "numerator": "request_error", "denominator": "request"],
        ["event": "response", "kind": "quantile", "q": 0.99],
        ["event": "message_sent", "kind": "count"],
        ["event": "$exposure", "kind": "sum"],
    ] as [JSON])
    func acceptsTheSpecShapes(_ body: JSON) async throws {
        try await TestApp.run { app in
            let r = try await app.request(.put, "/v1/metrics/m1", json: body)
            #expect(r.status == .created)
            let stored = try await app.request(.get, "/v1/metrics/m1").json()
            for (field, value) in body.objectValue! { #expect(stored[field] == value, "\(field)") }
        }
    }

    @Test func reportsEveryProblemWithItsPath() async throws {
        try await TestApp.run { app in
            let bad = try await app.request(.put, "/v1/metrics/m1", json: ["kind": "ratio", "event": "x", "numerator": "Bad Type", "q": 2])
            #expect(bad.status == .badRequest)
            #expect(try bad.error().code == "invalid_metric")
            #expect(Set(try bad.error().paths) == ["numerator", "denominator", "event", "q"])
            let quantile = try await app.request(.put, "/v1/metrics/m1", json: ["kind": "quantile", "event": "r", "q": 1])
            #expect(try quantile.error().paths == ["q"])
            let filter = try await app.request(.put, "/v1/metrics/m1", json: ["kind": "mean", "event": "r", "where": ["eq": 1]])
            #expect(try filter.error().paths == ["where"])
            let kind = try await app.request(.put, "/v1/metrics/m1", json: ["kind": "median", "event": "r"])
            #expect(try kind.error().paths == ["kind"])
            #expect(try await app.request(.get, "/v1/metrics").json()["metrics"]?.arrayValue?.isEmpty == true)
        }
    }

    @Test func updateListDeleteAndInUse() async throws {
        try await TestApp.run { app in
            #expect(try await app.request(.put, "/v1/metrics/answer_rating", json: ["event": "answer_rating", "kind": "mean"]).status == .created)
            let updated = try await app.request(.put, "/v1/metrics/answer_rating", json: ["event": "rating", "kind": "mean"], headers: [.ifMatch: "\"1\""])
            #expect(try updated.json()["revision"] == 2)
            #expect(try await app.request(.put, "/v1/metrics/answer_rating", json: ["event": "x", "kind": "mean"], headers: [.ifMatch: "\"1\""]).status == .preconditionFailed)
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            try await app.request(.post, "/v1/experiments", json: chatRelease())
            let inUse = try await app.request(.delete, "/v1/metrics/answer_rating")
            #expect(inUse.status == .conflict)
            #expect(try inUse.error().message.contains("\"chat-release\""))
            try await app.request(.delete, "/v1/experiments/chat-release")
            #expect(try await app.request(.delete, "/v1/metrics/answer_rating").status == .noContent)
            #expect(try await app.request(.get, "/v1/metrics/answer_rating").status == .notFound)
            let audit = try await app.request(.get, "/v1/audit").json()["entries"]?.arrayValue?.map { $0["action"]?.stringValue ?? "" } ?? []
            #expect(audit.filter { $0.hasPrefix("metric.") } == ["metric.delete", "metric.update", "metric.create"])
        }
    }
}
