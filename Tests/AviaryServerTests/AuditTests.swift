import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct AuditTests {
    @Test func recordsActorTimeActionBeforeAndAfter() async throws {
        try await TestApp.run { app in
            let admin = try await app.createKey(role: .admin)
            try await app.request(.put, "/v1/cohorts/internal", key: admin.secret, json: internalCohort)
            try await app.request(.post, "/v1/experiments", key: admin.secret, json: chatRelease())
            try await app.request(.post, "/v1/experiments/chat-release/start", key: admin.secret)

            let all = try await app.request(.get, "/v1/audit").json()["entries"]?.arrayValue ?? []
            #expect(all.map { $0["action"]?.stringValue ?? "" } == ["experiment.start", "experiment.create", "cohort.create", "key.create"])
            #expect(all[0]["actor_key_id"]?.stringValue == admin.id)
            #expect(all[3]["actor_key_id"]?.stringValue == "key_bootstrap")
            #expect(all[0]["at"]?.stringValue.flatMap(Timestamp.parse) != nil)

            let scoped = try await app.request(.get, "/v1/audit?experiment=chat-release").json()["entries"]?.arrayValue ?? []
            #expect(scoped.count == 2)
            let start = scoped[0]
            #expect(start["target_key"] == "chat-release")
            #expect(start["before"]?["status"] == "draft")
            #expect(start["after"]?["status"] == "running")
            #expect(start["before"]?["revision"] == 1)
            #expect(start["after"]?["revision"] == 2)
            #expect(scoped[1]["before"] == .null)
            #expect(scoped[1]["after"]?["key"] == "chat-release")

            // Key audit lines never hold secrets.
            let keyEntry = all[3]
            #expect(keyEntry["after"]?["key"] == nil)
            #expect(!String(describing: keyEntry).contains(admin.secret))
        }
    }

    @Test func pagesWithLimitAndBefore() async throws {
        try await TestApp.run { app in
            for i in 0..<5 { try await app.request(.put, "/v1/cohorts/c\(i)", json: internalCohort) }
            let page1 = try await app.request(.get, "/v1/audit?limit=2").json()
            #expect(page1["entries"]?.arrayValue?.count == 2)
            let cursor = try #require(page1["next_before"]?.numberValue)
            let page2 = try await app.request(.get, "/v1/audit?limit=2&before=\(Int(cursor))").json()
            let ids1 = page1["entries"]?.arrayValue?.compactMap { $0["id"]?.numberValue } ?? []
            let ids2 = page2["entries"]?.arrayValue?.compactMap { $0["id"]?.numberValue } ?? []
            #expect(ids2.allSatisfy { $0 < ids1.min()! })
            // Five entries in pages of two and one: the last page says there is no next one,
            // and so does a page that ends exactly at the last entry.
            let cursor2 = try #require(page2["next_before"]?.numberValue)
            let page3 = try await app.request(.get, "/v1/audit?limit=2&before=\(Int(cursor2))").json()
            #expect(page3["entries"]?.arrayValue?.count == 1 && page3["next_before"] == .null)
            let exact = try await app.request(.get, "/v1/audit?limit=5").json()
            #expect(exact["entries"]?.arrayValue?.count == 5 && exact["next_before"] == .null)
            let bad = try await app.request(.get, "/v1/audit?limit=0&before=x&experiment=NO")
            #expect(Set(try bad.error().paths) == ["limit", "before", "experiment"])
        }
    }
}
