import AviaryCore

/// What one kind of metric is in a report's SQL: its per-unit values over a unit's rows `e`,
/// the additive components the report state keeps per unit, model and app version, and the
/// per-unit values again from those components summed. Every unit metric's per-group columns
/// are then the moments of its values (`ReportSQL.perGroupColumns`), read back by name.
///
/// One type per kind, chosen by `Metric.Kind.sql`: a new kind is a new type here (with its
/// summary in `ReportBuilder`). Every operand — event types, a proportion's `where` — is bound.
protocol MetricSQL: Sendable {
    /// Per-unit values over the rows `e` of one unit: the value, and a second one that its
    /// moments pair with it (a ratio's denominator, or CUPED's pre-exposure value when
    /// `report.hasCovariate(metric)`).
    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String]
    /// Additive per-row components (summed over a unit's rows in a group).
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String]
    /// `perUnitValues` without CUPED's, from the summed components, `component(j)` naming this
    /// metric's j-th.
    func values(fromComponents component: (Int) -> String) -> [String]
    /// How many components `components` writes (`values(fromComponents:)` reads as many).
    var componentWidth: Int { get }
}

extension MetricSQL {
    var componentWidth: Int { 1 }
}

extension Metric.Kind {
    /// The kind's SQL; nil for quantiles, which have their own statements (`ReportSQL.quantiles`).
    var sql: (any MetricSQL)? {
        switch self {
        case .count: return CountSQL()
        case .sum: return SumSQL()
        case .mean: return MeanSQL()
        case .proportion: return ProportionSQL()
        case .ratio: return RatioSQL()
        case .quantile: return nil
        }
    }
}

/// Per-unit aggregates over the rows `e` matching a condition.
enum Aggregate {
    static func count(_ condition: String) -> String { "count(*) FILTER (WHERE \(condition))::float8" }
    static func sum(_ condition: String) -> String { "coalesce(sum(e.value) FILTER (WHERE \(condition)), 0)" }

    /// The rows `e` of events of `type` (bound).
    static func ofType(_ type: String?, _ b: inout Binder) -> String { "e.type = \(b.bind(type ?? ""))" }

    /// The value with, under CUPED, its pre-exposure twin.
    static func withCovariate(_ metric: Metric, in report: ReportSQL, _ b: inout Binder, _ value: (String) -> String) -> [String] {
        var values = [value(report.afterExposure(ofType(metric.event, &b)))]
        if report.hasCovariate(metric) { values.append(value("e.pre AND \(ofType(metric.event, &b))")) }
        return values
    }
}

/// Events per unit (units without any count as 0).
struct CountSQL: MetricSQL {
    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        Aggregate.withCovariate(metric, in: report, &b, Aggregate.count)
    }
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        [Aggregate.count(report.afterExposure(Aggregate.ofType(metric.event, &b)))]
    }
    func values(fromComponents component: (Int) -> String) -> [String] { [component(0)] }
}

/// The sum of the events' values per unit.
struct SumSQL: MetricSQL {
    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        Aggregate.withCovariate(metric, in: report, &b, Aggregate.sum)
    }
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        [Aggregate.sum(report.afterExposure(Aggregate.ofType(metric.event, &b)))]
    }
    func values(fromComponents component: (Int) -> String) -> [String] { [component(0)] }
}

/// The mean of the events' values per unit, over units with such an event.
struct MeanSQL: MetricSQL {
    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        ["avg(e.value) FILTER (WHERE \(report.afterExposure(Aggregate.ofType(metric.event, &b))))"]
    }
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        let events = report.afterExposure(Aggregate.ofType(metric.event, &b))
        return [Aggregate.sum(events), Aggregate.count(events)]
    }
    func values(fromComponents component: (Int) -> String) -> [String] {
        ["CASE WHEN \(component(1)) > 0 THEN \(component(0)) / \(component(1)) END"]
    }
    var componentWidth: Int { 2 }
}

/// Whether a unit has an event (whose value passes `where`, when the metric has one): 0 or 1.
struct ProportionSQL: MetricSQL {
    static let comparisons = ["eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="]

    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        var values = [Self.any(report.afterExposure(matching(metric, &b)))]
        if report.hasCovariate(metric) { values.append(Self.any("e.pre AND \(matching(metric, &b))")) }
        return values
    }
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        [Aggregate.count(report.afterExposure(matching(metric, &b)))]
    }
    func values(fromComponents component: (Int) -> String) -> [String] { ["(\(component(0)) > 0)::int::float8"] }

    private static func any(_ condition: String) -> String { "(\(Aggregate.count(condition)) > 0)::int::float8" }

    /// The metric's event type and its `where` on the value.
    private func matching(_ metric: Metric, _ b: inout Binder) -> String {
        var condition = Aggregate.ofType(metric.event, &b)
        if let filter = metric.filter, let op = Self.comparisons[filter.comparison] {
            condition += " AND e.value \(op) \(b.bind(filter.operand))"
        }
        return condition
    }
}

/// The sums of a numerator's and a denominator's values per unit (the delta method compares
/// their ratio).
struct RatioSQL: MetricSQL {
    func perUnitValues(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        components(metric, in: report, &b)
    }
    func components(_ metric: Metric, in report: ReportSQL, _ b: inout Binder) -> [String] {
        [Aggregate.sum(report.afterExposure(Aggregate.ofType(metric.numerator, &b))),
         Aggregate.sum(report.afterExposure(Aggregate.ofType(metric.denominator, &b)))]
    }
    func values(fromComponents component: (Int) -> String) -> [String] { [component(0), component(1)] }
    var componentWidth: Int { 2 }
}
