import Foundation

/// Validates an experiment's `rollout` object (docs/api.md, "Rollouts") against the rest of its definition.
public enum RolloutValidator {
    public static let maxSteps = 20
    public static let maxGuardrails = 20
    public static let maxStepSeconds = 366 * 86_400

    /// - Parameters:
    ///   - knownMetrics: defined metric keys; nil trusts every guardrail reference.
    ///   - notifyHosts: where notices may go; nil allows any host.
    public static func parse(
        _ value: JSON?, _ path: JSONPath, variants: [Variant], control: String?, rules: [Rule], knownMetrics: Set<String>?,
        notifyHosts: NotifyHosts? = nil, _ issues: inout IssueCollector
    ) -> RolloutPlan? {
        guard let value, !value.isNull else { return nil }
        guard let o = issues.object(value, path) else { return nil }
        let before = issues.issues.count
        issues.rejectUnknownFields(
            o, path, known: ["variant", "steps", "step_seconds", "approval_before", "min_units", "on_breach", "guardrails", "notify_url"])

        let variant = issues.key(o["variant"], path["variant"], required: true)
        if let variant {
            if !variants.isEmpty, !variants.contains(where: { $0.key == variant }) {
                issues.add(path["variant"], "names \"\(variant)\", which is not one of the variants")
            } else if variant == control {
                issues.add(path["variant"], "is the control; roll out another variant")
            }
        }

        var steps: [Double] = []
        if let items = issues.array(o["steps"], path["steps"], required: true) {
            if items.isEmpty || items.count > maxSteps { issues.add(path["steps"], "must hold 1 to \(maxSteps) steps") }
            for (i, item) in items.enumerated() {
                guard let hundredths = issues.percent(item, path["steps"][i], required: true) else { continue }
                if hundredths == 0 {
                    issues.add(path["steps"][i], "must be above 0")
                } else if let last = steps.last, Percent.toDouble(hundredths) <= last {
                    issues.add(path["steps"][i], "must be above the step before it (\(Percent.format(last)))")
                }
                steps.append(Percent.toDouble(hundredths))
            }
        }

        var stepSeconds = 0
        if let n = issues.number(o["step_seconds"], path["step_seconds"], required: true) {
            if n.rounded() != n || n < 1 || n > Double(maxStepSeconds) {
                issues.add(path["step_seconds"], "must be a whole number of seconds from 1 to \(maxStepSeconds)")
            } else {
                stepSeconds = Int(n)
            }
        }

        var approvalBefore: Set<Double> = []
        if let items = issues.array(o["approval_before"], path["approval_before"]) {
            for (i, item) in items.enumerated() {
                guard let hundredths = issues.percent(item, path["approval_before"][i], required: true) else { continue }
                let percent = Percent.toDouble(hundredths)
                if !steps.contains(percent) {
                    issues.add(path["approval_before"][i], "\(Percent.format(percent)) is not one of the steps")
                }
                approvalBefore.insert(percent)
            }
        }

        var minUnits = 0
        if let n = issues.number(o["min_units"], path["min_units"]) {
            if n.rounded() != n || n < 0 || n > 1e12 {
                issues.add(path["min_units"], "must be a whole number, 0 or more")
            } else {
                minUnits = Int(n)
            }
        }

        let onBreach: RolloutPlan.OnBreach = issues.choice(o["on_breach"], path["on_breach"]) ?? .rollback

        var guardrails: [RolloutPlan.Guardrail] = []
        if let items = issues.array(o["guardrails"], path["guardrails"]) {
            if items.count > maxGuardrails { issues.add(path["guardrails"], "must hold at most \(maxGuardrails) guardrails") }
            for (i, item) in items.prefix(maxGuardrails).enumerated() {
                if let guardrail = parseGuardrail(item, path["guardrails"][i], knownMetrics: knownMetrics, &issues) {
                    guardrails.append(guardrail)
                }
            }
        }

        var notifyURL: String?
        if let raw = issues.string(o["notify_url"], path["notify_url"]) {
            if raw.utf8.count > 2048 || !isWebhookURL(raw) {
                issues.add(path["notify_url"], "must be an http:// or https:// URL with a host, at most 2048 bytes")
            } else if let notifyHosts, let url = URL(string: raw), !notifyHosts.allows(url) {
                issues.add(path["notify_url"], "goes to \(url.host ?? "?")\(url.port.map { ":\($0)" } ?? ""), which is not one of AVIARY_NOTIFY_HOSTS (\(notifyHosts.description))")
            } else {
                notifyURL = raw
            }
        }

        // The rollout moves the rolled variant's weight in the catch-all rule.
        if let variant, let control, let rule = rules.last {
            if rule.when != nil {
                issues.add(path, "needs a last rule without `when` (the catch-all) whose split the rollout moves")
            } else if case .split(let split) = rule.serve {
                if !split.contains(where: { $0.variant == control }) {
                    issues.add(path, "needs the control \"\(control)\" in the catch-all rule's split")
                } else if let top = steps.last {
                    let room = split.filter { $0.variant == control || $0.variant == variant }.reduce(0) { $0 + $1.weight }
                    if let hundredths = Percent.hundredths(top), hundredths > room {
                        issues.add(
                            path["steps"],
                            "end at \(Percent.format(top)) %, but the control and \"\(variant)\" share only \(Percent.format(hundredths: room)) % of the catch-all split")
                    }
                }
            } else {
                issues.add(path, "needs the catch-all rule to serve a split, not one variant")
            }
        } else if variant != nil, rules.isEmpty {
            issues.add(path, "needs a last rule without `when` (the catch-all) whose split the rollout moves")
        }

        guard issues.issues.count == before, let variant else { return nil }
        return RolloutPlan(
            variant: variant, steps: steps, stepSeconds: stepSeconds, approvalBefore: approvalBefore, minUnits: minUnits,
            onBreach: onBreach, guardrails: guardrails, notifyURL: notifyURL)
    }

    static func parseGuardrail(
        _ value: JSON, _ path: JSONPath, knownMetrics: Set<String>?, _ issues: inout IssueCollector
    ) -> RolloutPlan.Guardrail? {
        guard let o = issues.object(value, path) else { return nil }
        issues.rejectUnknownFields(o, path, known: ["metric", "max", "min", "max_increase", "max_drop", "test"])
        let test: RolloutPlan.Guardrail.Test? = issues.choice(o["test"], path["test"])
        let metric = issues.key(o["metric"], path["metric"], required: true)
        if let metric, let knownMetrics, !knownMetrics.contains(metric) {
            issues.add(path["metric"], "names \"\(metric)\", which is not a defined metric")
        }
        let bounds = ["max", "min", "max_increase", "max_drop"].filter { o[$0] != nil }
        guard bounds.count == 1, let name = bounds.first else {
            issues.add(path, "needs exactly one of max, min, max_increase, max_drop")
            return nil
        }
        guard let x = issues.number(o[name], path[name], required: true) else { return nil }
        if (name == "max_increase" || name == "max_drop"), x < 0 {
            issues.add(path[name], "must be 0 or more (a share of the control's value, 0.05 = 5 %)")
            return nil
        }
        guard let metric else { return nil }
        let bound: RolloutPlan.Guardrail.Bound =
            switch name {
            case "max": .max(x)
            case "min": .min(x)
            case "max_increase": .maxIncrease(x)
            default: .maxDrop(x)
            }
        return RolloutPlan.Guardrail(metric: metric, bound: bound, test: test ?? .threshold)
    }

    static func isWebhookURL(_ raw: String) -> Bool {
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty, url.user == nil, url.password == nil
        else { return false }
        return !raw.contains(where: { $0.isWhitespace || $0.isNewline })
    }
}
