import AviaryCore
import Foundation

/// What each dashboard page shows, as the plain dictionaries its template reads. Numbers come
/// from the report as the JSON API gives them, rounded by `DashboardFormat`.
enum DashboardPages {
    /// "staff → canary; cn-east → 25 % canary; everyone → 5 % canary": who each rule serves
    /// what, the control's share left unsaid.
    static func rulesInWords(_ d: ExperimentDefinition) -> [String] {
        d.rules.map { rule in
            var served: String
            switch rule.serve {
            case .variant(let v): served = v
            case .split(let split):
                let others = split.filter { $0.variant != d.control && $0.weight > 0 }
                served = others.isEmpty ? d.control : others.map { "\(DashboardFormat.weight($0.weight)) \($0.variant)" }.joined(separator: ", ")
            }
            if rule.traffic < 10_000 { served += " (\(DashboardFormat.weight(rule.traffic)) of its traffic)" }
            return "\(rule.name) → \(served)"
        }
    }

    /// The catch-all split in words: "stable 95 %, canary 5 %".
    static func splitInWords(_ d: ExperimentDefinition) -> String {
        guard let rule = d.rules.last(where: { $0.when == nil }) else { return "no catch-all rule" }
        switch rule.serve {
        case .variant(let v): return "everyone: \(v)"
        case .split(let split): return split.map { "\($0.variant) \(DashboardFormat.weight($0.weight))" }.joined(separator: ", ")
        }
    }

    static func rolloutInWords(_ e: Experiment) -> String? {
        guard let plan = e.definition.rollout, let state = e.rolloutState else { return e.definition.rollout == nil ? nil : "not started" }
        let percent = state.phase == .rolledBack ? 0 : (plan.steps.indices.contains(state.step) ? plan.steps[state.step] : 0)
        return "step \(state.step + 1) of \(plan.steps.count) (\(DashboardFormat.weight(Percent.hundredths(percent) ?? 0))), \(state.phase.rawValue.replacingOccurrences(of: "_", with: " "))"
    }

    /// A row of the experiment list.
    static func listRow(_ e: Experiment, exposed: [String: Int]) -> [String: Any] {
        let srm = ReportBuilder.build(experiment: e.definition, metrics: [:], query: ReportQuery(), exposedUnits: exposed, aggregates: []).srmWarning
        return [
            "key": e.key, "name": e.definition.name, "status": e.status.rawValue, "split": splitInWords(e.definition),
            "rollout": rolloutInWords(e) ?? "", "srm": srm, "updated": DashboardFormat.time(e.updatedAt),
            "units": exposed.values.reduce(0, +),
        ]
    }

    /// Which lifecycle buttons an experiment offers now.
    static func actions(_ e: Experiment) -> [[String: Any]] {
        var actions: [(String, String)] = []
        for action in LifecycleAction.allCases where action.target(from: e.status) != nil {
            actions.append((action.rawValue, action.rawValue.capitalized))
        }
        if e.status == .running, let state = e.rolloutState, state.phase == .running || state.phase == .awaitingApproval {
            actions.insert(("approve", state.phase == .awaitingApproval ? "Approve the gate" : "Approve the next gate"), at: 0)
        }
        return actions.map { ["action": $0.0, "label": $0.1] }
    }

    static func groupLabel(_ key: ReportGroupKey) -> String {
        var parts = [key.variant]
        if let model = key.model { parts.append(model) }
        if let version = key.appVersion { parts.append(version) }
        return parts.joined(separator: " · ")
    }

    /// Every metric of a report: a table of its groups and the chart of the treatments' intervals.
    static func metrics(_ report: Report) -> [[String: Any]] {
        guard let first = report.groups.first else { return [] }
        return first.metrics.indices.map { index in
            let key = first.metrics[index].key
            var rows: [[String: Any]] = []
            var chartRows: [IntervalChart.Row] = []
            for group in report.groups {
                let m = group.metrics[index]
                let c = m.comparison
                let label = groupLabel(group.key)
                rows.append([
                    "group": label, "control": group.key.variant == report.control, "units": group.units, "n": m.n,
                    "mean": DashboardFormat.number(m.mean),
                    "delta": DashboardFormat.number(c?.delta),
                    "ci": c?.confidenceInterval.map { "[\(DashboardFormat.number($0.lowerBound)), \(DashboardFormat.number($0.upperBound))]" } ?? "—",
                    "lift": DashboardFormat.percent(c?.relativeLift, signed: true), "p": DashboardFormat.pValue(c?.pValue),
                    "beat": DashboardFormat.percent(c?.chanceToBeatControl), "note": m.note ?? c?.note ?? "",
                    "hasNote": (m.note ?? c?.note) != nil,
                ])
                if let delta = c?.delta, let ci = c?.confidenceInterval {
                    chartRows.append(IntervalChart.Row(label: label, delta: delta, low: ci.lowerBound, high: ci.upperBound))
                }
            }
            let kind = first.metrics[index].kind?.rawValue ?? "undefined"
            return [
                "key": key, "kind": kind, "rows": rows,
                "chart": IntervalChart.svg(title: "\(key): difference from \(report.control) with its 95 % interval", rows: chartRows) ?? "",
            ]
        }
    }

    static func history(_ entries: [RolloutHistoryEntry]) -> [[String: Any]] {
        entries.map { h in
            let readings = h.guardrails.map { r in "\(r.metric) \(DashboardFormat.number(r.value))\(r.ok ? "" : " (broken)")" }
            return [
                "at": DashboardFormat.time(h.at), "event": h.event.rawValue, "percent": DashboardFormat.weight(Percent.hundredths(h.percent) ?? 0),
                "reason": h.reason ?? "", "actor": h.actorKeyID ?? "leader", "guardrails": readings.joined(separator: "; "),
            ]
        }
    }

    /// The rollout's notices (`GET /v1/experiments/{key}/notices`) for its timeline.
    static func notices(_ entries: [JSON]) -> [[String: Any]] {
        entries.map { n in
            [
                "at": n["created_at"]?.stringValue.flatMap(Timestamp.parse).map(DashboardFormat.time) ?? "", "event": n["event"]?.stringValue ?? "",
                "delivery": n["delivery"]?.stringValue ?? "", "attempts": Int(n["attempts"]?.numberValue ?? 0),
                "state": n["state"]?.stringValue ?? "", "error": n["last_error"]?.stringValue ?? "",
            ]
        }
    }

    /// An audit entry with what changed: every leaf that differs between before and after.
    static func auditRow(_ entry: AuditEntry) -> [String: Any] {
        var changes: [[String: String]] = []
        diff(entry.before, entry.after, path: "", into: &changes)
        return [
            "id": entry.id, "at": DashboardFormat.time(entry.at), "actor": entry.actorKeyID ?? "—", "action": entry.action,
            "target": "\(entry.targetType) \(entry.targetKey)", "changes": changes, "hasChanges": !changes.isEmpty,
        ]
    }

    static func diff(_ before: JSON?, _ after: JSON?, path: String, into changes: inout [[String: String]]) {
        if case .object(let a)? = before, case .object(let b)? = after {
            for key in Set(a.keys).union(b.keys).sorted() where !["updated_at", "revision"].contains(key) {
                diff(a[key], b[key], path: path.isEmpty ? key : "\(path).\(key)", into: &changes)
            }
            return
        }
        guard before != after else { return }
        changes.append([
            "path": path.isEmpty ? "(whole)" : path, "before": before.map { $0.canonicalString() } ?? "—", "after": after.map { $0.canonicalString() } ?? "—",
        ])
    }
}
