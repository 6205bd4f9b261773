import Foundation

extension ExperimentDefinition {
    /// The definition as the API shows it; `ExperimentValidator` reads the same shape back.
    public var json: [String: JSON] {
        [
            "key": .string(key),
            "name": .string(name),
            "description": .string(description),
            "unit": .string(unit.rawValue),
            "fallback_unit": fallbackUnit.map { .string($0.rawValue) } ?? .null,
            "salt": .string(salt),
            "variants": .array(variants.map { v in
                var o: [String: JSON] = ["key": .string(v.key), "value": v.value]
                if let name = v.name { o["name"] = .string(name) }
                return .object(o)
            }),
            "control": .string(control),
            "rules": .array(rules.map(\.json)),
            "opt_out": .bool(optOut),
            "layer": layer.map(JSON.string) ?? .null,
            "layer_range": layerRange.map { .array([.number(Percent.toDouble($0.start)), .number(Percent.toDouble($0.end))]) } ?? .null,
            "metrics": [
                "primary": .array(metrics.primary.map(JSON.string)),
                "secondary": .array(metrics.secondary.map(JSON.string)),
                "guardrails": .array(metrics.guardrails.map(JSON.string)),
            ],
            "rollout": rollout?.json ?? .null,
            "analysis": analysis.json,
        ]
    }
}

extension Rule {
    public var json: JSON {
        var o: [String: JSON] = ["name": .string(name), "when": when?.json ?? .null]
        switch serve {
        case .variant(let v): o["serve"] = ["variant": .string(v)]
        case .split(let entries):
            o["serve"] = ["split": .array(entries.map { ["variant": .string($0.variant), "weight": .number(Percent.toDouble($0.weight))] })]
        }
        o["traffic"] = .number(Percent.toDouble(traffic))
        return .object(o)
    }
}

extension Experiment {
    public var json: JSON {
        var o = definition.json
        o["status"] = .string(status.rawValue)
        o["winner"] = winner.map(JSON.string) ?? .null
        o["revision"] = .number(Double(revision))
        o["created_at"] = .string(Timestamp.format(createdAt))
        o["updated_at"] = .string(Timestamp.format(updatedAt))
        o["archived_at"] = archivedAt.map { .string(Timestamp.format($0)) } ?? .null
        if let plan = definition.rollout {
            o["rollout_state"] = rolloutState?.json(plan: plan) ?? .null
        }
        return .object(o)
    }
}

extension Cohort {
    public var json: JSON {
        [
            "key": .string(key),
            "name": .string(name),
            "description": .string(description),
            "condition": condition.json,
            "revision": .number(Double(revision)),
            "created_at": .string(Timestamp.format(createdAt)),
            "updated_at": .string(Timestamp.format(updatedAt)),
        ]
    }
}

/// RFC 3339 timestamps in UTC with milliseconds, as every API field shows them.
public enum Timestamp {
    public static func format(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted))
    }

    public static func parse(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon).timeZone(separator: .omitted)) { return d }
        return try? Date(text, strategy: .iso8601)
    }
}
