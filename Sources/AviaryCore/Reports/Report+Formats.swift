import Foundation

extension Report {
    /// The JSON report of docs/api.md ("Reports"). Numbers that cannot be computed are `null`, never NaN.
    public var json: JSON {
        var exposed: [String: JSON] = [:]
        for (variant, units) in exposedUnits { exposed[variant] = .number(Double(units)) }
        return [
            "experiment": .string(experiment),
            "control": .string(control),
            "by": .array(query.dimensions.map { .string($0.rawValue) }),
            "from": query.from.map { .string(Timestamp.format($0)) } ?? .null,
            "to": query.to.map { .string(Timestamp.format($0)) } ?? .null,
            "exposed_units": .object(exposed),
            "multiple_exposures": .number(Double(multipleExposures)),
            "multiple_exposures_warning": .bool(multipleExposuresWarning),
            "srm_p_value": Self.number(srm.pValue),
            "srm_warning": .bool(srmWarning),
            "srm_note": srm.note.map(JSON.string) ?? .null,
            "groups": .array(groups.map(\.json)),
            "rollout": rollout?.json ?? .null,
            "source": .string(source),
            "replica_lag_seconds": Self.number(replicaLagSeconds),
        ]
    }

    /// The CSV columns of docs/api.md ("Reports"), in order.
    public static let csvColumns = [
        "variant", "model", "app_version", "metric", "kind", "units", "n", "mean", "stddev", "delta", "relative_lift",
        "ci95_low", "ci95_high", "p_value", "chance_to_beat_control", "adjusted_p_value",
    ]

    /// RFC 4180: a header row, then one row per (group, metric); CRLF line ends; empty fields
    /// for nulls. Numbers print in the shortest form that reads back to the same double.
    public var csv: String {
        var out = Self.csvColumns.joined(separator: ",") + "\r\n"
        for group in groups {
            for metric in group.metrics {
                let c = metric.comparison
                let fields: [String] = [
                    Self.csvText(group.key.variant), Self.csvText(group.key.model), Self.csvText(group.key.appVersion),
                    Self.csvText(metric.key), Self.csvText(metric.kind?.rawValue), String(group.units), String(metric.n),
                    Self.csvNumber(metric.mean), Self.csvNumber(metric.stddev), Self.csvNumber(c?.delta),
                    Self.csvNumber(c?.relativeLift), Self.csvNumber(c?.confidenceInterval?.lowerBound),
                    Self.csvNumber(c?.confidenceInterval?.upperBound), Self.csvNumber(c?.pValue),
                    Self.csvNumber(c?.chanceToBeatControl), Self.csvNumber(c?.adjustedPValue),
                ]
                out += fields.joined(separator: ",") + "\r\n"
            }
        }
        return out
    }

    static func number(_ value: Double?) -> JSON {
        guard let value, value.isFinite else { return .null }
        return .number(value)
    }

    static func csvNumber(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        return JSON.integral(value).map(String.init) ?? "\(value)"
    }

    /// Quotes a field when it holds a comma, quote or line break (doubling quotes), and
    /// defuses spreadsheet formulas: text from events (models, app versions) starting with
    /// = + - @ or a control character gets a leading apostrophe.
    static func csvText(_ value: String?) -> String {
        guard var value else { return "" }
        if let first = value.unicodeScalars.first, "=+-@\t\r".unicodeScalars.contains(first) { value = "'" + value }
        guard value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return value }
        return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

extension ReportGroup {
    var json: JSON {
        var metricsJSON: [String: JSON] = [:]
        for metric in metrics { metricsJSON[metric.key] = metric.json }
        return [
            "variant": .string(key.variant),
            "model": key.model.map(JSON.string) ?? .null,
            "app_version": key.appVersion.map(JSON.string) ?? .null,
            "units": .number(Double(units)),
            "events": .number(Double(events)),
            "metrics": .object(metricsJSON),
        ]
    }
}

extension MetricResult {
    var json: JSON {
        let c = comparison
        var o: [String: JSON] = [
            "kind": kind.map { .string($0.rawValue) } ?? .null,
            "n": .number(Double(n)),
            "mean": Report.number(mean),
            "stddev": Report.number(stddev),
            "delta": Report.number(c?.delta),
            "relative_lift": Report.number(c?.relativeLift),
            "ci95": c?.confidenceInterval.map { .array([Report.number($0.lowerBound), Report.number($0.upperBound)]) } ?? .null,
            "p_value": Report.number(c?.pValue),
            "adjusted_p_value": Report.number(c?.adjustedPValue),
            "mde": Report.number(c?.minimumDetectableEffect),
            "chance_to_beat_control": Report.number(c?.chanceToBeatControl),
            "method": c?.method.map { .string($0.rawValue) } ?? .null,
            "cuped": c?.cuped.map { ["theta": Report.number($0.theta), "variance_reduction": Report.number($0.varianceReduction)] } ?? .null,
            "note": [note, c?.note].compactMap { $0 }.joined(separator: "; ").nilIfEmpty.map(JSON.string) ?? .null,
        ]
        if let q { o["q"] = .number(q) }
        return .object(o)
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
