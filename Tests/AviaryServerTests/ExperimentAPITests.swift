import AviaryCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite struct ExperimentAPITests {
    @Test func createReadListReplaceArchive() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)

            let created = try await app.request(.post, "/v1/experiments", json: chatRelease())
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/v1/experiments/chat-release")
            #expect(created.headers[.eTag] == "\"1\"")
            #expect(created.headers[.contentType] == "application/json; charset=utf-8")
            let body = try created.json()
            #expect(body["revision"] == 1)
            #expect(body["status"] == "draft")
            #expect(body["rules"]?.arrayValue?.count == 3)

            let read = try await app.request(.get, "/v1/experiments/chat-release")
            #expect(read.status == .ok)
            #expect(try read.json() == body)

            let list = try await app.request(.get, "/v1/experiments")
            #expect(try list.json()["experiments"]?.arrayValue?.count == 1)
            let running = try await app.request(.get, "/v1/experiments?status=running")
            #expect(try running.json()["experiments"]?.arrayValue?.count == 0)
            let draft = try await app.request(.get, "/v1/experiments?status=draft")
            #expect(try draft.json()["experiments"]?.arrayValue?.count == 1)
            let badStatus = try await app.request(.get, "/v1/experiments?status=sleeping")
            #expect(badStatus.status == .badRequest)
            #expect(try badStatus.error().paths == ["status"])

            var changed = chatRelease()
            changed = .object(changed.objectValue!.merging(["name": "renamed"]) { $1 })
            let replaced = try await app.request(.put, "/v1/experiments/chat-release", json: changed, headers: [.ifMatch: "\"1\""])
            #expect(replaced.status == .ok)
            #expect(try replaced.json()["revision"] == 2)
            #expect(try replaced.json()["name"] == "renamed")
            #expect(replaced.headers[.eTag] == "\"2\"")

            let archived = try await app.request(.delete, "/v1/experiments/chat-release")
            #expect(archived.status == .ok)
            #expect(try archived.json()["archived_at"]?.stringValue != nil)
            #expect(try await app.request(.get, "/v1/experiments").json()["experiments"]?.arrayValue?.count == 0)
            #expect(try await app.request(.get, "/v1/experiments?archived=true").json()["experiments"]?.arrayValue?.count == 1)

            let again = try await app.request(.post, "/v1/experiments", json: chatRelease())
            #expect(again.status == .conflict)
            let start = try await app.request(.post, "/v1/experiments/chat-release/start")
            #expect(start.status == .conflict)

            let revisions = try await app.request(.get, "/v1/experiments/chat-release/revisions").json()["revisions"]?.arrayValue ?? []
            #expect(revisions.map { $0["revision"] } == [1, 2, 3])
            #expect(revisions.map { $0["action"] } == ["create", "update", "archive"])
            #expect(revisions[0]["experiment"]?["name"] == "LobeChat v1.9.0 canary")
            #expect(revisions[1]["experiment"]?["name"] == "renamed")
        }
    }

    @Test func duplicateKeyIsAConflict() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            #expect(try await app.request(.post, "/v1/experiments", json: chatRelease()).status == .created)
            let second = try await app.request(.post, "/v1/experiments", json: chatRelease())
            #expect(second.status == .conflict)
            #expect(try second.error().code == "conflict")
        }
    }

    @Test func ifMatchIsRequiredAndChecked() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            try await app.request(.post, "/v1/experiments", json: chatRelease())

            let missing = try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease())
            #expect(missing.status == .preconditionRequired)
            #expect(try missing.error().code == "precondition_required")

            let stale = try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "\"7\""])
            #expect(stale.status == .preconditionFailed)
            #expect(try stale.error().code == "precondition_failed")
            #expect(stale.headers[.eTag] == "\"1\"")

            let garbage = try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "yesterday"])
            #expect(garbage.status == .badRequest)

            #expect(try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "\"1\""]).status == .ok)
            // The same If-Match again is now stale: a lost update is refused.
            #expect(try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "\"1\""]).status == .preconditionFailed)
            #expect(try await app.request(.put, "/v1/experiments/chat-release", json: chatRelease(), headers: [.ifMatch: "W/\"2\""]).status == .ok)
            // Lifecycle actions check If-Match when it is given.
            #expect(try await app.request(.post, "/v1/experiments/chat-release/start", headers: [.ifMatch: "\"2\""]).status == .preconditionFailed)
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json()["status"] == "draft")
        }
    }

    @Test func replacingAMissingExperimentIs404() async throws {
        try await TestApp.run { app in
            let response = try await app.request(.put, "/v1/experiments/nothing", json: chatRelease(key: "nothing"), headers: [.ifMatch: "\"1\""])
            #expect(response.status == .notFound)
            #expect(try await app.request(.get, "/v1/experiments/nothing").status == .notFound)
            #expect(try await app.request(.get, "/v1/experiments/Not%20A%20Key").status == .notFound)
        }
    }

    @Test func lifecycleAllowsOnlyLegalTransitions() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            try await app.request(.post, "/v1/experiments", json: chatRelease())
            let path = "/v1/experiments/chat-release"

            for illegal in ["pause", "resume", "stop", "rollback"] {
                let r = try await app.request(.post, "\(path)/\(illegal)")
                #expect(r.status == .conflict, "\(illegal) from draft")
                #expect(try r.error().code == "illegal_transition")
            }
            #expect(try await app.request(.post, "\(path)/start").json()["status"] == "running")
            for illegal in ["start", "resume"] {
                #expect(try await app.request(.post, "\(path)/\(illegal)").status == .conflict, "\(illegal) from running")
            }
            #expect(try await app.request(.post, "\(path)/pause").json()["status"] == "paused")
            for illegal in ["start", "pause", "rollback"] {
                #expect(try await app.request(.post, "\(path)/\(illegal)").status == .conflict, "\(illegal) from paused")
            }
            #expect(try await app.request(.post, "\(path)/resume").json()["status"] == "running")

            let badWinner = try await app.request(.post, "\(path)/stop", json: ["winner": "nobody"])
            #expect(badWinner.status == .badRequest)
            #expect(try badWinner.error().paths == ["winner"])
            #expect(try await app.request(.get, path).json()["status"] == "running")

            let stopped = try await app.request(.post, "\(path)/stop", json: ["winner": "canary"])
            #expect(stopped.status == .ok)
            #expect(try stopped.json()["status"] == "stopped")
            #expect(try stopped.json()["winner"] == "canary")
            for illegal in LifecycleAction.allCases {
                #expect(try await app.request(.post, "\(path)/\(illegal.rawValue)").status == .conflict, "\(illegal) from stopped")
            }
            #expect(try await app.request(.get, path).json()["revision"] == 5)
        }
    }

    @Test func rollbackFromRunning() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            try await app.request(.post, "/v1/experiments", json: chatRelease())
            try await app.request(.post, "/v1/experiments/chat-release/start")
            let r = try await app.request(.post, "/v1/experiments/chat-release/rollback", json: ["reason": "errors"])
            #expect(try r.json()["status"] == "rolled_back")
            #expect(try await app.request(.post, "/v1/experiments/chat-release/resume").status == .conflict)
            let winnerOnStart = try await app.request(.post, "/v1/experiments/chat-release/pause", json: ["winner": "canary"])
            #expect(winnerOnStart.status == .badRequest)
        }
    }

    @Test func invalidExperimentReportsEveryPathAndWritesNothing() async throws {
        try await TestApp.run { app in
            var body = chatRelease().objectValue!
            body["key"] = "Bad Key"
            body["control"] = "nobody"
            body["rules"] = [
                ["serve": ["split": [["variant": "stable", "weight": 74.5], ["variant": "canary", "weight": 25]]]],
                ["when": ["attr": "country", "like": "C%"], "serve": ["variant": "ghost"]],
                ["when": ["cohort": "internal"], "serve": ["variant": "canary"]],
            ]
            let response = try await app.request(.post, "/v1/experiments", json: .object(body))
            #expect(response.status == .badRequest)
            let error = try response.error()
            #expect(error.code == "invalid_experiment")
            #expect(
                Set(error.paths) == ["key", "control", "rules[0].serve.split", "rules[1].when.like", "rules[1].serve.variant", "rules[2].when.cohort"])
            let split = try response.json()["error"]?["details"]?.arrayValue?.first { $0["path"] == "rules[0].serve.split" }
            #expect(split?["message"] == "weights sum to 99.5, not 100")

            #expect(try await app.request(.get, "/v1/experiments?archived=true").json()["experiments"]?.arrayValue?.count == 0)
            #expect(try await app.request(.get, "/v1/audit").json()["entries"]?.arrayValue?.filter { $0["target_type"] == "experiment" }.count == 0)
        }
    }

    @Test func invalidReplacementChangesNothing() async throws {
        try await TestApp.run { app in
            try await app.request(.put, "/v1/cohorts/internal", json: internalCohort)
            let before = try await app.request(.post, "/v1/experiments", json: chatRelease()).json()
            var body = chatRelease().objectValue!
            body["variants"] = [["key": "stable"], ["key": "stable"]]
            let r = try await app.request(.put, "/v1/experiments/chat-release", json: .object(body), headers: [.ifMatch: "\"1\""])
            #expect(r.status == .badRequest)
            #expect(try r.error().paths.contains("variants[1].key"))
            #expect(try await app.request(.get, "/v1/experiments/chat-release").json() == before)
        }
    }

    @Test func layerRangesMayNotOverlap() async throws {
        try await TestApp.run { app in
            func layered(_ key: String, _ range: JSON) -> JSON {
                .object(chatRelease(key: key).objectValue!.merging(["layer": "home", "layer_range": range, "rules": [["serve": ["variant": "canary"]]]]) { $1 })
            }
            #expect(try await app.request(.post, "/v1/experiments", json: layered("a", [0, 50])).status == .created)
            let overlapping = try await app.request(.post, "/v1/experiments", json: layered("b", [49.99, 60]))
            #expect(overlapping.status == .badRequest)
            #expect(try overlapping.error().paths == ["layer_range"])
            #expect(try await app.request(.post, "/v1/experiments", json: layered("b", [50, 60])).status == .created)
            // Archiving frees the range.
            try await app.request(.delete, "/v1/experiments/a")
            #expect(try await app.request(.post, "/v1/experiments", json: layered("c", [0, 50])).status == .created)
        }
    }
}
