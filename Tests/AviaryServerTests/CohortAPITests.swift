import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct CohortAPITests {
    @Test func putGetListDelete() async throws {
        try await TestApp.run { app in
            let created = try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            #expect(created.status == .created)
            #expect(try created.json()["revision"] == 1)
            let updated = try await app.request(.put, "/v1/cohorts/internal", json: ["condition": ["attr": "email", "ends_with": "@example.com"]])
            #expect(updated.status == .ok)
            #expect(try updated.json()["revision"] == 2)
            let read = try await app.request(.get, "/v1/cohorts/internal").json()
            #expect(read["condition"] == ["attr": "email", "ends_with": "@example.com"])
            #expect(try await app.request(.get, "/v1/cohorts").json()["cohorts"]?.arrayValue?.count == 1)
            #expect(try await app.request(.put, "/v1/cohorts/internal", json: internalCohort, headers: [.ifMatch: "\"1\""]).status == .preconditionFailed)
            #expect(try await app.request(.delete, "/v1/cohorts/internal").status == .noContent)
            #expect(try await app.request(.get, "/v1/cohorts/internal").status == .notFound)
            #expect(try await app.request(.delete, "/v1/cohorts/internal").status == .notFound)
        }
    }

    @Test func deletingACohortInUseNamesTheExperiments() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            try await app.request(.post, "/v1/experiments", json: chatRelease(key: "alpha"))
            try await app.request(.post, "/v1/experiments", json: chatRelease(key: "beta"))
            let r = try await app.request(.delete, "/v1/cohorts/internal")
            #expect(r.status == .conflict)
            let error = try r.error()
            #expect(error.message.contains("\"alpha\"") && error.message.contains("\"beta\""))
            #expect(try await app.request(.get, "/v1/cohorts/internal").status == .ok)

            try await app.request(.delete, "/v1/experiments/alpha")
            try await app.request(.delete, "/v1/experiments/beta")
            #expect(try await app.request(.delete, "/v1/cohorts/internal").status == .noContent)
        }
    }

    @Test func cohortsReferringToCohorts() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/staff", json: internalCohort)
            #expect(try await app.request(.put, "/v1/cohorts/beta", json: ["condition": ["any": [["cohort": "staff"], ["attr": "plan", "eq": "pro"]]]]).status == .created)
            let cycle = try await app.request(.put, "/v1/cohorts/staff", json: ["condition": ["cohort": "beta"]])
            #expect(cycle.status == .badRequest)
            #expect(try cycle.error().code == "invalid_cohort")
            #expect(try cycle.error().message.contains("staff → beta → staff"))
            let unknown = try await app.request(.put, "/v1/cohorts/gamma", json: ["condition": ["cohort": "delta"]])
            #expect(try unknown.error().paths == ["condition.cohort"])
            let used = try await app.request(.delete, "/v1/cohorts/staff")
            #expect(used.status == .conflict)
            #expect(try used.error().message.contains("cohorts \"beta\""))
            let badKey = try await app.request(.put, "/v1/cohorts/Bad%20Key", json: internalCohort)
            #expect(badKey.status == .badRequest)
            #expect(try badKey.error().paths == ["key"])
        }
    }
}
