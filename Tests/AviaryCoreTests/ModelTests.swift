import AviaryCore
import Foundation
import Testing

@Suite struct LifecycleTests {
    @Test func legalTransitions() {
        #expect(LifecycleAction.start.target(from: .draft) == .running)
        #expect(LifecycleAction.pause.target(from: .running) == .paused)
        #expect(LifecycleAction.resume.target(from: .paused) == .running)
        #expect(LifecycleAction.stop.target(from: .running) == .stopped)
        #expect(LifecycleAction.stop.target(from: .paused) == .stopped)
        #expect(LifecycleAction.rollback.target(from: .running) == .rolledBack)
    }

    @Test func everyOtherTransitionIsIllegal() {
        let legal: Set<String> = ["start:draft", "pause:running", "resume:paused", "stop:running", "stop:paused", "rollback:running"]
        for action in LifecycleAction.allCases {
            for status in ExperimentStatus.allCases where !legal.contains("\(action.rawValue):\(status.rawValue)") {
                #expect(action.target(from: status) == nil, "\(action) from \(status)")
            }
        }
    }
}

@Suite struct SemanticVersionTests {
    @Test func ordersByPrecedence() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.9", "1.10.0", "v2.0.0"]
        let versions = try ordered.map { try #require(SemanticVersion($0)) }
        for (a, b) in zip(versions, versions.dropFirst()) { #expect(a < b, "\(a) < \(b)") }
        #expect(SemanticVersion("1.9") == SemanticVersion("1.9.0"))
        #expect(SemanticVersion("1.9.0+build.5") == SemanticVersion("1.9.0"))
    }

    @Test(arguments: ["", "1..0", "a.b.c", "1.2.3.4", "1.2.3-", "1.2.3-a..b", "-1.0.0"])
    func rejectsMalformed(_ text: String) {
        #expect(SemanticVersion(text) == nil)
    }
}

@Suite struct JSONTests {
    @Test func parsesAndRejectsDeepNesting() throws {
        let ok = try JSON.parse(Array("{\"a\": [1, true, null, \"x\", 2.5]}".utf8))
        #expect(ok == ["a": [1, true, nil, "x", 2.5]])
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSON.ParseError.tooDeep) { try JSON.parse(Array(deep.utf8)) }
        // Brackets inside strings do not count.
        _ = try JSON.parse(Array("[\"\(String(repeating: "[", count: 100))\"]".utf8))
    }

    @Test func rejectsMalformed() {
        #expect(throws: JSON.ParseError.self) { try JSON.parse(Array("{\"a\": ".utf8)) }
        #expect(throws: JSON.ParseError.self) { try JSON.parse(Array("{'a': 1}".utf8)) }
    }

    @Test func keepsBooleansAndNumbersApart() throws {
        #expect(try JSON.parse(Array("[1, 0, true, false]".utf8)) == [1, 0, true, false])
    }

    @Test func canonicalFormIsSortedAndCompact() {
        let value: JSON = ["b": 1, "a": [2.5, "x/y"]]
        #expect(value.canonicalString() == "{\"a\":[2.5,\"x/y\"],\"b\":1}")
    }
}

@Suite struct APIKeySecretTests {
    @Test func secretsAreRandomAndHashed() {
        let a = APIKeySecret.generate()
        let b = APIKeySecret.generate()
        #expect(a != b)
        #expect(a.hasPrefix("avk_") && a.count == 52)
        #expect(APIKeySecret.hash(a).count == 32)
        #expect(APIKeySecret.constantTimeEquals(APIKeySecret.hash(a), APIKeySecret.hash(a)))
        #expect(!APIKeySecret.constantTimeEquals(APIKeySecret.hash(a), APIKeySecret.hash(b)))
    }

    @Test func sha256MatchesAKnownVector() {
        // SHA-256("abc") from FIPS 180-2.
        let hex = APIKeySecret.hash("abc").map { String(format: "%02x", $0) }.joined()
        #expect(hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func timestampsRoundTrip() throws {
        let date = Date(timeIntervalSince1970: 1_795_000_000.5)
        let text = Timestamp.format(date)
        #expect(text == "2026-11-18T11:06:40.500Z")
        let back = try #require(Timestamp.parse(text))
        #expect(abs(back.timeIntervalSince(date)) < 0.001)
        #expect(Timestamp.parse("2026-11-27T05:00:00Z") != nil)
    }
}
