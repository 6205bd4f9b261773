import Foundation

/// Validates a batch of events — a JSON array or NDJSON, at most `maxBatch` — and reports every
/// bad event with its index, path and reason. A batch is all or nothing.
public enum EventValidator {
    public static let maxBatch = 1000
    public static let maxTextLength = 1024
    public static let maxPropsBytes = 16 * 1024
    /// Events stamped further in the future than this are refused: a clock that far off is a bug.
    public static let maxFutureSkew: TimeInterval = 24 * 3600
    /// Events stamped before 2000-01-01T00:00:00Z are refused: a time that early is a clock that
    /// was never set or a date parsed wrong, and it would land in no partition a report reads.
    public static let earliest = Date(timeIntervalSince1970: 946_684_800)

    static let fields: Set<String> = [
        "id", "type", "user_id", "anonymous_id", "ts", "value", "model", "app_version", "experiment", "variant", "props",
    ]

    public enum Format: Sendable { case jsonArray, ndjson }

    /// Parses the body into one JSON value per event.
    public static func split(_ bytes: some Collection<UInt8>, format: Format) -> Result<[JSON], ValidationFailure> {
        switch format {
        case .jsonArray:
            let json: JSON
            do {
                json = try JSON.parse(bytes)
            } catch {
                return .failure(ValidationFailure([error.issue()]))
            }
            guard case .array(let items) = json else {
                return .failure(ValidationFailure([ValidationIssue(path: "", message: "must be an array of events, not \(json.typeName)")]))
            }
            return .success(items)
        case .ndjson:
            var items: [JSON] = []
            var issues: [ValidationIssue] = []
            let lines = Array(bytes).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            for line in lines {
                let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...]
                if trimmed.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { continue }
                do {
                    items.append(try JSON.parse(trimmed))
                } catch {
                    issues.append(error.issue(in: JSONPath.root[items.count + issues.count], invalid: "line is not valid JSON"))
                }
                if items.count + issues.count > maxBatch { break }
            }
            return issues.isEmpty ? .success(items) : .failure(ValidationFailure(issues))
        }
    }

    public static func validate(_ items: [JSON], now: Date = Date()) -> Result<[Event], ValidationFailure> {
        guard items.count <= maxBatch else {
            return .failure(ValidationFailure([ValidationIssue(path: "", message: "a batch holds at most \(maxBatch) events, not \(items.count)")]))
        }
        guard !items.isEmpty else { return .failure(ValidationFailure([ValidationIssue(path: "", message: "the batch is empty")])) }
        var issues = IssueCollector()
        var events: [Event] = []
        for (index, item) in items.enumerated() {
            if let event = validate(item, at: JSONPath.root[index], now: now, issues: &issues) { events.append(event) }
        }
        return issues.isEmpty ? .success(events) : .failure(ValidationFailure(issues.issues))
    }

    static func validate(_ item: JSON, at path: JSONPath, now: Date, issues: inout IssueCollector) -> Event? {
        guard let object = issues.object(item, path, required: true) else { return nil }
        let before = issues.issues.count
        issues.rejectUnknownFields(object, path, known: fields)

        var id = UUID()
        if let raw = issues.string(object["id"], path["id"]) {
            if let parsed = UUID(uuidString: raw) { id = parsed } else { issues.add(path["id"], "must be a UUID") }
        }
        let type = issues.string(object["type"], path["type"], required: true)
        if let type, !(Key.isValid(type) || (type.hasPrefix("$") && Key.isValid(String(type.dropFirst())))) {
            issues.add(path["type"], "\"\(type.prefix(80))\" is not a valid event type (the key grammar, or $ and a key)")
        }
        let userID = text(object["user_id"], path["user_id"], &issues)
        let anonymousID = text(object["anonymous_id"], path["anonymous_id"], &issues)
        if userID == nil, anonymousID == nil, !issues.issues.contains(where: { $0.path.hasPrefix(path["user_id"].description) || $0.path.hasPrefix(path["anonymous_id"].description) }) {
            issues.add(path, "needs user_id or anonymous_id")
        }
        var ts: Date?
        if let raw = issues.string(object["ts"], path["ts"], required: true) {
            if let parsed = Timestamp.parse(raw) {
                if parsed.timeIntervalSince(now) > maxFutureSkew {
                    issues.add(path["ts"], "is more than a day in the future")
                } else if parsed < earliest {
                    issues.add(path["ts"], "is before 2000-01-01T00:00:00Z")
                } else {
                    ts = parsed
                }
            } else {
                issues.add(path["ts"], "must be an RFC 3339 time such as 2026-11-27T05:00:00Z")
            }
        }
        var value = 1.0
        if let v = issues.number(object["value"], path["value"]) {
            if v.isFinite { value = v } else { issues.add(path["value"], "must be a finite number") }
        }
        let model = text(object["model"], path["model"], &issues)
        let appVersion = text(object["app_version"], path["app_version"], &issues)
        let experiment = issues.key(object["experiment"], path["experiment"])
        let variant = issues.key(object["variant"], path["variant"])
        // Judged on what was sent, whatever else is wrong with the event: one without the other
        // is reported at the missing one's path.
        let sentExperiment = !(object["experiment"]?.isNull ?? true), sentVariant = !(object["variant"]?.isNull ?? true)
        if sentExperiment != sentVariant {
            issues.add(path[sentExperiment ? "variant" : "experiment"], "experiment and variant are given together")
        }
        var props: String?
        if let p = issues.object(object["props"], path["props"]) {
            let text = JSON.object(p).canonicalString()
            if text.utf8.count > maxPropsBytes { issues.add(path["props"], "must be at most \(maxPropsBytes) bytes of JSON") } else { props = text }
        }
        guard issues.issues.count == before, let type, let ts else { return nil }
        return Event(
            id: id, type: type, userID: userID, anonymousID: anonymousID, ts: ts, value: value, model: model, appVersion: appVersion,
            experiment: experiment, variant: variant, props: props)
    }

    static func text(_ value: JSON?, _ path: JSONPath, _ issues: inout IssueCollector) -> String? {
        guard let s = issues.string(value, path) else { return nil }
        guard !s.isEmpty, s.utf8.count <= maxTextLength else {
            issues.add(path, "must be 1 to \(maxTextLength) bytes")
            return nil
        }
        return s
    }
}
