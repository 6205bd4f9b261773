import AviaryCore
import Foundation
import Testing

/// Text PostgreSQL cannot hold is refused where it enters, at its path (docs/security.md,
/// "Hostile input").
@Suite struct StorableTextTests {
    @Test(arguments: [
        (#"{"context": {"targetingKey": "evil\u0000"}}"#, "context.targetingKey"),
        (#"[{"id": 1}, {"user_id": "a\u0000b"}]"#, "[1].user_id"),
        (#"{"variants": [{"key": "a"}, {"value": {"deep": ["x", "\u0000"]}}]}"#, "variants[1].value.deep[1]"),
        (#""\u0000""#, ""),
        (#"{"a\u0000": 1}"#, #"a\u0000"#),
        (#"{"props": {"k\u0000": "v"}}"#, #"props.k\u0000"#),
    ])
    func aNulIsRefusedAtItsPath(document: String, path: String) {
        #expect(throws: JSON.ParseError.unstorable(path: path)) { try JSON.parse(Array(document.utf8)) }
    }

    @Test func theIssueOfALineCarriesItsIndex() {
        let error = JSON.ParseError.unstorable(path: "user_id")
        #expect(error.issue(in: JSONPath.root[3]) == ValidationIssue(path: "[3].user_id", message: StorableText.nulProblem))
        #expect(JSON.ParseError.unstorable(path: "").issue(in: JSONPath.root[3]).path == "[3]")
        #expect(JSON.ParseError.tooDeep.issue().path == "")
    }

    @Test func otherTextParsesAsBefore() throws {
        let json = try JSON.parse(Array(#"{"a": "\u0001 é 😀 \u00e9", "b": [-0, 1e300]}"#.utf8))
        #expect(json["a"]?.stringValue == "\u{1} é 😀 é")
        #expect(throws: JSON.ParseError.self) { try JSON.parse(Array("[1e400]".utf8)) }
    }

    @Test func prefixCutsAtACharacterBoundary() {
        #expect(StorableText.prefix("abc", bytes: 5) == "abc")
        #expect(StorableText.prefix("abcdef", bytes: 3) == "abc")
        // é is two bytes, 😀 four: a cut inside either keeps the characters before it.
        #expect(StorableText.prefix("aé", bytes: 2) == "a")
        #expect(StorableText.prefix("a😀b", bytes: 4) == "a")
        #expect(StorableText.prefix("a😀b", bytes: 5) == "a😀")
        #expect(StorableText.prefix(String(repeating: "😀", count: 1_000), bytes: 1_024).utf8.count == 1_024)
    }

    @Test(arguments: ["0001-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
    func eventsBefore2000AreRefused(ts: String) {
        let item: JSON = ["type": "message", "user_id": "u", "ts": .string(ts)]
        guard case .failure(let failure) = EventValidator.validate([item]) else {
            Issue.record("accepted \(ts)")
            return
        }
        #expect(failure.issues == [ValidationIssue(path: "[0].ts", message: "is before 2000-01-01T00:00:00Z")])
        #expect(throws: Never.self) { try EventValidator.validate([["type": "message", "user_id": "u", "ts": "2000-01-01T00:00:00Z"]]).get() }
    }

    @Test func aNulInAnEventIsRefusedAtItsIndex() {
        let body = #"[{"type": "message", "user_id": "u", "ts": "2026-01-01T00:00:00Z"}, {"type": "m", "model": "x\u0000"}]"#
        guard case .failure(let failure) = EventValidator.split(Array(body.utf8), format: .jsonArray) else {
            Issue.record("parsed")
            return
        }
        #expect(failure.issues == [ValidationIssue(path: "[1].model", message: StorableText.nulProblem)])
        let lines = "{\"type\": \"m\"}\n{\"user_id\": \"\\u0000\"}\n"
        guard case .failure(let ndjson) = EventValidator.split(Array(lines.utf8), format: .ndjson) else {
            Issue.record("parsed")
            return
        }
        #expect(ndjson.issues == [ValidationIssue(path: "[1].user_id", message: StorableText.nulProblem)])
    }

    @Test func aContextRefusesUnitsPostgreSQLCannotIndex() {
        var issues = IssueCollector()
        _ = AssignmentContext(json: ["user_id": .string(String(repeating: "x", count: 1_025))], at: .root, issues: &issues)
        _ = AssignmentContext(json: ["targetingKey": .string(String(repeating: "x", count: 1_025))], at: .root, unitField: "targetingKey", issues: &issues)
        #expect(issues.issues.map(\.path) == ["user_id", "targetingKey"])
    }
}
