import AviaryCore
import Foundation
import PostgresNIO

/// The statements of one report, with their bindings. Only fixed SQL text is spliced in
/// (column names chosen from enums); every value — experiment key, event types, `where`
/// operands, q, times, units — is a bind parameter.
///
/// The plan that scales is a nested loop: the experiment's units, each reading its own events
/// from the covering `events_user`/`events_anonymous` index (0005), split over parallel
/// workers that aggregate per unit before gathering. An A/B report's units are the rows of
/// `exposures` (one per unit) not marked `multiple`; a rollout step's are the intervals of
/// `exposure_history` during which each unit was served one variant. Hash and merge joins are
/// switched off: the planner's estimates would otherwise have it hash the events side or gather
/// every joined row into one process. Quantiles, which read only their own event types, are a
/// hash join of those events with the units.
///
/// The same per-unit values feed the report state (`ReportState`): written per unit by a
/// refresh, and recomputed for the touched units when a report reads the state.
struct ReportSQL {
    /// `SET LOCAL` for every statement of a report. A JIT compile costs more than it saves on
    /// these plans.
    static let settings = [
        "work_mem = '256MB'", "jit = off", "statement_timeout = '55s'", "parallel_setup_cost = 0", "parallel_tuple_cost = 0",
        "enable_hashjoin = off", "enable_mergejoin = off",
    ]

    let experiment: ExperimentDefinition
    let query: ReportQuery
    let unitMetrics: [Metric]
    let quantileMetrics: [Metric]

    init(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery) {
        self.experiment = experiment
        self.query = query
        unitMetrics = metrics.filter { $0.kind != .quantile }
        quantileMetrics = metrics.filter { $0.kind == .quantile }
    }

    /// CUPED's window before each unit's first exposure, in days, when this report reads it:
    /// an A/B report by variant of an experiment with `analysis.cuped` and a count, sum or
    /// proportion metric. The attributed rows then include the unit's events of that window,
    /// flagged `pre`; every metric value but the pre-exposure ones leaves them out.
    var cupedDays: Int? {
        query.variantOnly && query.attribution == .firstExposure ? stateCupedDays : nil
    }

    /// CUPED's window as the experiment asks for it, whatever the report: the report state
    /// (written for the report by variant) carries it, and its signature names it.
    var stateCupedDays: Int? {
        experiment.analysis.cuped && unitMetrics.contains(where: \.kind.takesCovariate) ? experiment.analysis.cupedDays : nil
    }

    /// `condition` restricted to events after first exposure when the rows hold pre-exposure ones.
    func afterExposure(_ condition: String) -> String {
        cupedDays == nil ? condition : "NOT e.pre AND \(condition)"
    }

    /// Whether the report state can answer: an A/B report, by variant (`report_units`) or by
    /// model and app version (`report_unit_dimensions`), with or without a window. A window
    /// takes the state's rows of the units first exposed in it whose events all came before its
    /// end, and recomputes the others (`windowRecompute`).
    var readsState: Bool { query.attribution == .firstExposure }

    /// Per-unit grouping (with the unit) and per-group grouping, over the attributed rows `e`.
    var dimensions: [(column: String, name: String)] {
        var dimensions = [("e.unit_variant", "variant")]
        if query.groupsByModel { dimensions.append(("e.model", "model")) }
        if query.groupsByAppVersion { dimensions.append(("e.app_version", "app_version")) }
        return dimensions
    }

    /// Units exposed in the window per variant; a NULL variant counts the units served more
    /// than one (A/B reports).
    var exposedUnits: PostgresQuery {
        var b = Binder()
        let key = b.bind(experiment.key)
        let window = Self.window("x.first_at", query, &b)
        let single = servedOneVariant(&b)
        return b.query(
            """
            SELECT CASE WHEN \(single) THEN x.variant END, count(*)::int8 FROM exposures x
            WHERE x.experiment_key = \(key)\(window) GROUP BY 1
            """)
    }

    /// Per group: units with events, events, and the moments of each unit metric (`perGroupColumns`).
    var perGroup: PostgresQuery {
        var b = Binder()
        let perUnit = perUnitValues(&b).enumerated().map { "\($1) AS v\($0)" }
        let unitsSQL = units(&b)
        let from = attributed(&b)
        let selectDimensions = dimensions.map { "\($0.column) AS \($0.name)" }.joined(separator: ", ")
        let outerDimensions = dimensions.map(\.name).joined(separator: ", ")
        return b.query(
            """
            WITH \(unitsSQL),
            per_unit AS (
                SELECT \(selectDimensions), \(eventCount) AS events\(perUnit.map { ", " + $0 }.joined())
                \(from)
                GROUP BY \(dimensions.map(\.column).joined(separator: ", ")), e.unit_key
            )
            SELECT \(outerDimensions), \(Self.groupCounts("count(*) FILTER (WHERE events > 0)"))\(perGroupColumns { "v\($0)" }.map { ", " + $0 }.joined())
            FROM per_unit GROUP BY \(outerDimensions)
            """)
    }

    /// A unit's events after its first exposure, over its rows `e`.
    var eventCount: String { cupedDays == nil ? "count(*)" : "count(*) FILTER (WHERE NOT e.pre)" }

    /// Per group: the events and value of each quantile metric; nil without quantile metrics.
    var quantiles: PostgresQuery? {
        guard !quantileMetrics.isEmpty else { return nil }
        var b = Binder()
        var columns: [String] = []
        for (index, metric) in quantileMetrics.enumerated() {
            let type = b.bind(metric.event ?? "")
            columns.append(
                "count(*) FILTER (WHERE e.type = \(type))::int8 AS q\(index)_n, "
                    + "percentile_cont(\(b.bind(metric.quantile ?? 0.5))::float8) WITHIN GROUP (ORDER BY e.value) FILTER (WHERE e.type = \(type)) AS q\(index)_value")
        }
        let types = b.bind(quantileMetrics.map { $0.event ?? "" })
        let unitsSQL = units(&b)
        let from = attributed(&b)
        let groupDimensions = dimensions.map(\.column).joined(separator: ", ")
        return b.query(
            """
            WITH \(unitsSQL)
            SELECT \(dimensions.map { "\($0.column) AS \($0.name)" }.joined(separator: ", ")), \(columns.joined(separator: ", "))
            \(from) AND \(afterExposure("e.type = ANY(\(types))"))
            GROUP BY \(groupDimensions)
            """)
    }

    func column(_ kind: UnitKind) -> String { kind == .userID ? "e.user_id" : "e.anonymous_id" }

    /// The experiment's units as `units` (unit, variant, first_at, and for a rollout step
    /// until): for an A/B report each unit served one variant, first exposed in the window; for
    /// a rollout step each stretch of time [first_at, until) during which a unit was served one
    /// variant (`ExposureHistory.variant(at:)`) and that overlaps the window. With `only` (a
    /// bound text[]), just those units.
    func units(_ b: inout Binder, only: String? = nil) -> String {
        let key = b.bind(experiment.key)
        switch query.attribution {
        case .firstExposure:
            let window = Self.window("x.first_at", query, &b)
            let onlyUnits = only.map { " AND x.unit = ANY(\($0))" } ?? ""
            let single = servedOneVariant(&b)
            return "units AS (SELECT x.unit, x.variant, x.first_at FROM exposures x WHERE x.experiment_key = \(key)\(window)\(onlyUnits) AND \(single))"
        case .servedAt:
            var overlaps: [String] = []
            if let from = query.from { overlaps.append("(s.until IS NULL OR s.until > \(b.bind(from)))") }
            if let to = query.to { overlaps.append("s.first_at < \(b.bind(to))") }
            return """
                units AS (
                    SELECT s.unit, s.variant, s.first_at, s.until FROM (
                        SELECT h.unit, h.variant, h.first_at,
                               lead(h.first_at) OVER (PARTITION BY h.unit ORDER BY h.first_at, h.variant COLLATE "C") AS until
                        FROM exposure_history h WHERE h.experiment_key = \(key)
                    ) s\(overlaps.isEmpty ? "" : " WHERE " + overlaps.joined(separator: " AND "))
                )
                """
        }
    }

    /// Whether the `exposures` row `x` is a unit served one variant. With `to`, variants first
    /// served at or after it do not count: a window's report does not change afterwards.
    func servedOneVariant(_ b: inout Binder) -> String {
        guard let to = query.to else { return "NOT x.multiple" }
        return """
            (NOT x.multiple OR NOT EXISTS (SELECT 1 FROM exposure_history h WHERE h.experiment_key = x.experiment_key \
            AND h.unit = x.unit AND h.variant <> x.variant AND h.first_at < \(b.bind(to))))
            """
    }

    /// Each unit's events while it was served its variant (from its first exposure on, for an
    /// A/B report), as rows `e`. With a fallback unit an event belongs to its primary id when it
    /// has one, else to its fallback id (`Attribution`): two joins, each served by an index (a
    /// COALESCE could not be). An event naming the experiment and another variant than
    /// its unit's is left out (its own exposure makes such a unit one served several variants).
    ///
    /// With CUPED (`cupedDays`) the rows start that many days before first exposure, those
    /// before it flagged `pre` (a window bounds only the others).
    func attributed(_ b: inout Binder) -> String {
        let key = b.bind(experiment.key)
        var during = " AND e.ts >= u.first_at"
        var columns = "u.variant AS unit_variant, u.unit AS unit_key, u.first_at AS unit_first_at, e.ts, e.type, e.value, e.model, e.app_version, e.experiment_key, e.variant"
        if let days = cupedDays {
            during = " AND e.ts >= u.first_at - make_interval(days => \(b.bind(days))::int)"
            let window = Self.window("e.ts", query, &b)
            if !window.isEmpty { during += " AND (e.ts < u.first_at OR (true\(window)))" }
            columns += ", e.ts < u.first_at AS pre"
        } else {
            if query.attribution == .servedAt { during += " AND e.ts < coalesce(u.until, 'infinity'::timestamptz)" }
            during += Self.window("e.ts", query, &b)
        }
        // One join per id kind in the order `Attribution` tries them, each on the events
        // without the earlier kinds' ids.
        let order = Attribution(experiment).order
        let walks = order.indices.map { i in
            let earlier = order[..<i].map { "\(column($0)) IS NULL AND " }.joined()
            return "SELECT \(columns) FROM units u JOIN events e ON \(earlier)\(column(order[i])) = u.unit\(during)"
        }
        return """
            FROM (\(walks.joined(separator: " UNION ALL "))) e
            WHERE e.type <> '$exposure' AND (e.experiment_key IS DISTINCT FROM \(key) OR e.variant = e.unit_variant)
            """
    }

    /// Per-unit values over the rows `e` of one unit, in metric order: one or two per unit
    /// metric (`MetricSQL.perUnitValues`).
    func perUnitValues(_ b: inout Binder) -> [String] {
        unitMetrics.flatMap { $0.kind.sql?.perUnitValues($0, in: self, &b) ?? [] }
    }

    /// Additive per-row components of the metrics, for `report_unit_dimensions`. Summed over a
    /// unit's rows in a group, `valuesFromComponents` turns them into `perUnitValues`.
    func perUnitComponents(_ b: inout Binder) -> [String] {
        unitMetrics.flatMap { $0.kind.sql?.components($0, in: self, &b) ?? [] }
    }

    /// The per-unit values of `perUnitValues` (without CUPED's) from summed components;
    /// `component(j)` names the j-th summed component.
    func valuesFromComponents(_ component: (Int) -> String) -> [String] {
        var values: [String] = [], first = 0
        for metric in unitMetrics {
            guard let sql = metric.kind.sql else { continue }
            let offset = first
            values += sql.values(fromComponents: { component(offset + $0) })
            first += sql.componentWidth
        }
        return values
    }

    /// Whether `metric`'s per-unit values come with its pre-exposure value (CUPED).
    func hasCovariate(_ metric: Metric) -> Bool { cupedDays != nil && metric.kind.takesCovariate }

    /// Per-group columns of each unit metric, named `m<i>_<moment>` (`MomentColumn`): n, mean
    /// and variance of its values, and for a ratio the denominator's — with CUPED the
    /// pre-exposure value's — mean and variance and the covariance, over the per-unit values
    /// named by `value(i)` (the i-th of `perUnitValues`).
    func perGroupColumns(_ value: (Int) -> String) -> [String] {
        var columns: [String] = [], i = 0
        for (index, metric) in unitMetrics.enumerated() {
            func named(_ moment: MomentColumn, _ sql: String) -> String { "\(sql) AS \(moment.name(index))" }
            let m = value(i)
            columns += [named(.n, "count(\(m))::int8"), named(.mean, "avg(\(m))"), named(.variance, "var_samp(\(m))")]
            if metric.kind == .ratio || hasCovariate(metric) {
                let d = value(i + 1)
                columns += [named(.pairedMean, "avg(\(d))"), named(.pairedVariance, "var_samp(\(d))"), named(.covariance, "covar_samp(\(m), \(d))")]
                i += 2
            } else {
                columns += [MomentColumn.pairedMean, .pairedVariance, .covariance].map { named($0, "NULL::float8") }
                i += 1
            }
        }
        return columns
    }

    /// The moments a unit metric's per-group columns hold, by name.
    enum MomentColumn: String, CaseIterable {
        case n, mean, variance
        case pairedMean = "paired_mean", pairedVariance = "paired_variance", covariance

        func name(_ metricIndex: Int) -> String { "m\(metricIndex)_\(rawValue)" }
    }

    /// A group's units with events (`units`, an aggregate) and its events, by name.
    static func groupCounts(_ units: String) -> String { "\(units)::int8 AS units_with_events, sum(events)::int8 AS events" }

    /// ` AND column >= from AND column < to` for the query's window.
    static func window(_ column: String, _ query: ReportQuery, _ b: inout Binder) -> String {
        var sql = ""
        if let from = query.from { sql += " AND \(column) >= \(b.bind(from))" }
        if let to = query.to { sql += " AND \(column) < \(b.bind(to))" }
        return sql
    }
}
