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
    static let columnsPerMetric = 6
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
    let dimensionCount: Int

    init(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery) {
        self.experiment = experiment
        self.query = query
        unitMetrics = metrics.filter { $0.kind != .quantile }
        quantileMetrics = metrics.filter { $0.kind == .quantile }
        dimensionCount = 1 + (query.groupsByModel ? 1 : 0) + (query.groupsByAppVersion ? 1 : 0)
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
    private var stateCupedDays: Int? {
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
    private var dimensions: [(column: String, name: String)] {
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

    /// Per group: units with events, events, and `columnsPerMetric` columns per unit metric.
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
            SELECT \(outerDimensions), count(*) FILTER (WHERE events > 0)::int8, sum(events)::int8\(perGroupColumns { "v\($0)" }.map { ", " + $0 }.joined())
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
        for metric in quantileMetrics {
            let type = b.bind(metric.event ?? "")
            columns.append(
                "count(*) FILTER (WHERE e.type = \(type))::int8, "
                    + "percentile_cont(\(b.bind(metric.quantile ?? 0.5))::float8) WITHIN GROUP (ORDER BY e.value) FILTER (WHERE e.type = \(type))")
        }
        let types = b.bind(quantileMetrics.map { $0.event ?? "" })
        let unitsSQL = units(&b)
        let from = attributed(&b)
        let groupDimensions = dimensions.map(\.column).joined(separator: ", ")
        return b.query(
            """
            WITH \(unitsSQL)
            SELECT \(groupDimensions), \(columns.joined(separator: ", "))
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

    /// Per-unit aggregates over the rows `e` of one unit: one per count/sum/mean/proportion
    /// metric, two (numerator, denominator) per ratio metric, in metric order; with CUPED, two
    /// (after, before exposure) per count, sum and proportion metric.
    func perUnitValues(_ b: inout Binder) -> [String] {
        var values: [String] = []
        for metric in unitMetrics {
            func value(_ period: (String) -> String) -> String {
                let events = period(matching(metric, &b))
                switch metric.kind {
                case .count: return Self.count(events)
                case .sum: return Self.sum(events)
                case .mean: return "avg(e.value) FILTER (WHERE \(events))"
                default: return "(\(Self.count(events)) > 0)::int::float8"
                }
            }
            switch metric.kind {
            case .ratio:
                values.append(Self.sum(afterExposure(ofType(metric.numerator, &b))))
                values.append(Self.sum(afterExposure(ofType(metric.denominator, &b))))
            case .quantile:
                continue
            default:
                values.append(value(afterExposure))
                if hasCovariate(metric) { values.append(value { "e.pre AND \($0)" }) }
            }
        }
        return values
    }

    /// Additive per-row components of the metrics, for `report_unit_dimensions`: a count, a
    /// sum, a mean's sum and count, a proportion's matching events, a ratio's two sums. Summed
    /// over a unit's rows in a group, `valuesFromComponents` turns them into `perUnitValues`.
    func perUnitComponents(_ b: inout Binder) -> [String] {
        var components: [String] = []
        for metric in unitMetrics {
            switch metric.kind {
            case .count, .proportion: components.append(Self.count(afterExposure(matching(metric, &b))))
            case .sum: components.append(Self.sum(afterExposure(matching(metric, &b))))
            case .mean:
                let events = afterExposure(matching(metric, &b))
                components += [Self.sum(events), Self.count(events)]
            case .ratio:
                components += [Self.sum(afterExposure(ofType(metric.numerator, &b))), Self.sum(afterExposure(ofType(metric.denominator, &b)))]
            case .quantile: continue
            }
        }
        return components
    }

    /// The rows `e` of events of `type` (bound).
    private func ofType(_ type: String?, _ b: inout Binder) -> String { "e.type = \(b.bind(type ?? ""))" }

    /// The rows `e` a count, sum, mean or proportion metric reads: its event type, and a
    /// proportion's `where` on the value.
    private func matching(_ metric: Metric, _ b: inout Binder) -> String {
        var condition = ofType(metric.event, &b)
        if metric.kind == .proportion, let filter = metric.filter, let op = Self.comparisons[filter.comparison] {
            condition += " AND e.value \(op) \(b.bind(filter.operand))"
        }
        return condition
    }

    /// Per-unit aggregates over the rows `e` matching `condition`.
    private static func count(_ condition: String) -> String { "count(*) FILTER (WHERE \(condition))::float8" }
    private static func sum(_ condition: String) -> String { "coalesce(sum(e.value) FILTER (WHERE \(condition)), 0)" }

    /// The per-unit values of `perUnitValues` (without CUPED's) from summed components;
    /// `component(j)` names the j-th summed component.
    func valuesFromComponents(_ component: (Int) -> String) -> [String] {
        var values: [String] = [], j = 0
        for metric in unitMetrics {
            switch metric.kind {
            case .count, .sum: values.append(component(j)); j += 1
            case .mean: values.append("CASE WHEN \(component(j + 1)) > 0 THEN \(component(j)) / \(component(j + 1)) END"); j += 2
            case .proportion: values.append("(\(component(j)) > 0)::int::float8"); j += 1
            case .ratio: values += [component(j), component(j + 1)]; j += 2
            case .quantile: continue
            }
        }
        return values
    }

    /// Whether `metric`'s per-unit values come with its pre-exposure value (CUPED).
    func hasCovariate(_ metric: Metric) -> Bool { cupedDays != nil && metric.kind.takesCovariate }

    /// Per-group columns, `columnsPerMetric` per unit metric (n, mean, variance, and for a
    /// ratio the denominator's — with CUPED the pre-exposure value's — mean and variance and the
    /// covariance), over the per-unit values named by `value(i)` (the i-th of `perUnitValues`).
    func perGroupColumns(_ value: (Int) -> String) -> [String] {
        var columns: [String] = [], i = 0
        for metric in unitMetrics {
            let m = value(i)
            columns.append("count(\(m))::int8, avg(\(m)), var_samp(\(m))")
            if metric.kind == .ratio || hasCovariate(metric) {
                let d = value(i + 1)
                columns.append("avg(\(d)), var_samp(\(d)), covar_samp(\(m), \(d))")
                i += 2
            } else {
                columns.append("NULL::float8, NULL::float8, NULL::float8")
                i += 1
            }
        }
        return columns
    }

    /// What the state's values depend on: the unit columns and the metric definitions, in order.
    var signature: String {
        var parts = ["units=served-one-variant", "unit=\(experiment.unit.rawValue)", "fallback=\(experiment.fallbackUnit?.rawValue ?? "")"]
        if let days = stateCupedDays { parts.append("cuped_days=\(days)") }
        for metric in unitMetrics + quantileMetrics {
            guard case .object(var definition) = metric.json else { continue }
            for field in ["name", "description", "revision", "created_at", "updated_at"] { definition[field] = nil }
            parts.append(JSON.object(definition).canonicalString())
        }
        return parts.joined(separator: "\n")
    }

    // MARK: Report state

    /// Which columns of the state's rows a statement needs: a report's two statements each
    /// recompute only their half for the touched units (the other half is NULL).
    enum StateColumns { case all, metrics, quantiles }

    /// The two tables of the state: one row per unit (`report_units`, per-unit values, for the
    /// standing report by variant) or per unit, model and app version
    /// (`report_unit_dimensions`, additive components, for reports by model or app version).
    enum StateLayout {
        case perUnit, perDimension

        var table: String { self == .perUnit ? "report_units" : "report_unit_dimensions" }
        /// The row's columns besides the experiment: the per-unit rows carry no quantile values
        /// (reports count them from `report_quantile_counts`, kept from the dimension rows).
        var columns: [String] {
            self == .perUnit
                ? ["unit", "variant", "first_at", "last_ts", "metrics", "events"]
                : ["unit", "variant", "first_at", "model", "app_version", "components", "only_model_row", "only_version_row", "events", "quantile_slots", "quantile_values"]
        }
    }

    /// The layout a report reads.
    var stateLayout: StateLayout { query.variantOnly ? .perUnit : .perDimension }

    /// The state's rows (`layout.columns`) for the units `units` selects, over rows `e`.
    private func perUnitState(_ b: inout Binder, only: String?, layout: StateLayout, columns: StateColumns = .all) -> String {
        var metrics = "NULL::float8[]"
        if columns != .quantiles {
            let values = layout == .perUnit ? perUnitValues(&b) : perUnitComponents(&b)
            metrics = values.isEmpty ? "'{}'::float8[]" : "ARRAY[\(values.joined(separator: ", "))]::float8[]"
        }
        var slots = "NULL::int2[]", quantileValues = "NULL::float8[]"
        if layout == .perDimension, columns != .metrics, !quantileMetrics.isEmpty {
            var slotParts: [String] = [], valueParts: [String] = []
            for (slot, metric) in quantileMetrics.enumerated() {
                let agg = "array_agg(e.value) FILTER (WHERE \(afterExposure("e.type = \(b.bind(metric.event ?? ""))")))"
                valueParts.append("coalesce(\(agg), '{}')")
                slotParts.append("array_fill(\(slot)::int2, ARRAY[coalesce(cardinality(\(agg)), 0)])")
            }
            slots = slotParts.joined(separator: " || ")
            quantileValues = valueParts.joined(separator: " || ")
        }
        let unitsSQL = units(&b, only: only)
        var from = attributed(&b)
        if columns == .quantiles { from += " AND \(afterExposure("e.type = ANY(\(b.bind(quantileMetrics.map { $0.event ?? "" })))"))" }
        switch layout {
        case .perUnit:
            return """
                WITH \(unitsSQL)
                SELECT e.unit_key AS unit, e.unit_variant AS variant, min(e.unit_first_at) AS first_at,
                       max(e.ts)\(cupedDays == nil ? "" : " FILTER (WHERE NOT e.pre)") AS last_ts, \(eventCount) AS events, \(metrics) AS metrics
                \(from)
                GROUP BY e.unit_variant, e.unit_key
                """
        case .perDimension:
            // Pre-exposure rows (CUPED) belong to no group of these reports.
            return """
                WITH \(unitsSQL)
                SELECT e.unit_key AS unit, e.unit_variant AS variant, min(e.unit_first_at) AS first_at, e.model, e.app_version, \(eventCount) AS events,
                       \(metrics) AS components, \(slots) AS quantile_slots, \(quantileValues) AS quantile_values,
                       count(*) OVER (PARTITION BY e.unit_key, e.model) = 1 AS only_model_row,
                       count(*) OVER (PARTITION BY e.unit_key, e.app_version) = 1 AS only_version_row
                \(from)
                GROUP BY e.unit_variant, e.unit_key, e.model, e.app_version
                HAVING \(eventCount) > 0
                """
        }
    }

    /// Writes the state rows of every unit, or of `touched` ones, in `layout`; answers how many.
    func insertState(touched: [String]?, layout: StateLayout) -> PostgresQuery {
        var b = Binder()
        let key = b.bind(experiment.key)
        let only = touched.map { b.bind($0) + "::text[]" }
        let rows = perUnitState(&b, only: only, layout: layout)
        let columns = layout.columns
        return b.query(
            """
            WITH written AS (
                INSERT INTO \(layout.table) (experiment_key, \(columns.joined(separator: ", ")))
                SELECT \(key), \(columns.map { "s." + $0 }.joined(separator: ", ")) FROM (\(rows)) s
                RETURNING 1
            )
            SELECT count(*)::int8 FROM written
            """)
    }

    /// The experiment's units with events received, or exposures recorded, at or after
    /// `watermark` (see `ReportState.touchedUnits`).
    func touchedUnits(since watermark: Date) -> PostgresQuery {
        var b = Binder()
        let key = b.bind(experiment.key)
        let since = b.bind(watermark)
        let eventUnits = Attribution(experiment).order.map { "SELECT \(column($0)) AS unit FROM events e WHERE e.received_at >= \(since) AND \(column($0)) IS NOT NULL" }
        return b.query(
            """
            SELECT t.unit FROM (\(eventUnits.joined(separator: " UNION ALL "))) t
            WHERE EXISTS (SELECT 1 FROM exposures x WHERE x.experiment_key = \(key) AND x.unit = t.unit)
            UNION
            SELECT x.unit FROM exposures x WHERE x.experiment_key = \(key) AND x.recorded_at >= \(since)
            """)
    }

    /// The per-unit rows of the state (of the units first exposed in the window) but the
    /// touched units', and the touched units recomputed, as `all_units`.
    private func stateUnits(_ b: inout Binder, touched: [String]) -> String {
        let only = b.bind(touched) + "::text[]"
        let kept = keptRows(&b, only: only)
        let fresh = perUnitState(&b, only: only, layout: .perUnit, columns: .metrics)
        let selected = StateLayout.perUnit.columns
        return """
            all_units AS (
                SELECT \(selected.map { "r." + $0 }.joined(separator: ", ")) FROM report_units r
                WHERE \(kept)
                UNION ALL
                SELECT \(selected.map { "f." + $0 }.joined(separator: ", ")) FROM (\(fresh)) f
            )
            """
    }

    /// The condition on the state's rows `r` (of either table) that a report reads as they
    /// stand: the experiment's, of units first exposed in the window, but the recomputed ones
    /// (`only`, a bound text[]).
    private func keptRows(_ b: inout Binder, only: String) -> String {
        "r.experiment_key = \(b.bind(experiment.key))\(Self.window("r.first_at", query, &b)) AND NOT (r.unit = ANY(\(only)))"
    }

    /// The report's group columns by name (variant, then model and app version as asked).
    private var groupNames: String { dimensions.map(\.name).joined(separator: ", ") }

    /// `perGroup`, from the state: per-unit values straight from `report_units`, or by model
    /// and app version from each unit's rows of `report_unit_dimensions` in a group, summed and
    /// turned into per-unit values as the report from every event computes them.
    func perGroupFromState(touched: [String]) -> PostgresQuery {
        var b = Binder()
        switch stateLayout {
        case .perUnit:
            let all = stateUnits(&b, touched: touched)
            return b.query(
                """
                WITH \(all)
                SELECT variant, count(*) FILTER (WHERE events > 0)::int8, sum(events)::int8\(perGroupColumns { "metrics[\($0 + 1)]" }.map { ", " + $0 }.joined())
                FROM all_units GROUP BY variant
                """)
        case .perDimension:
            // A unit's one row in its group is its per-unit values as it stands; only units
            // with several rows in a group (a model used from two app versions, say) and the
            // touched units, recomputed, are summed. The rows that stand alone are read
            // straight from the table, so that parallel workers aggregate them.
            let alone: String
            switch (query.groupsByModel, query.groupsByAppVersion) {
            case (true, true): alone = "true"
            case (true, false): alone = "r.only_model_row"
            default: alone = "r.only_version_row"
            }
            let only = b.bind(touched) + "::text[]"
            let kept = keptRows(&b, only: only)
            let fresh = perUnitState(&b, only: only, layout: .perDimension, columns: .metrics)
            let asIs = valuesFromComponents { "r.components[\($0 + 1)]" }.enumerated().map { "\($1) AS v\($0)" }
            let summed = valuesFromComponents { "sum(s.components[\($0 + 1)])" }.enumerated().map { "\($1) AS v\($0)" }
            let rowColumns = ["unit", "variant", "model", "app_version", "events", "components"]
            return b.query(
                """
                WITH per_unit AS (
                    SELECT \(dimensions.map { "r." + $0.name }.joined(separator: ", ")), r.events\(asIs.map { ", " + $0 }.joined())
                    FROM report_unit_dimensions r
                    WHERE \(kept) AND \(alone)
                    UNION ALL
                    SELECT \(dimensions.map { "s." + $0.name }.joined(separator: ", ")), sum(s.events) AS events\(summed.map { ", " + $0 }.joined())
                    FROM (
                        SELECT \(rowColumns.map { "r." + $0 }.joined(separator: ", ")) FROM report_unit_dimensions r
                        WHERE \(kept) AND NOT \(alone)
                        UNION ALL
                        SELECT \(rowColumns.map { "f." + $0 }.joined(separator: ", ")) FROM (\(fresh)) f
                    ) s
                    GROUP BY \(dimensions.map { "s." + $0.name }.joined(separator: ", ")), s.unit
                )
                SELECT \(groupNames), count(*)::int8, sum(events)::int8\(perGroupColumns { "v\($0)" }.map { ", " + $0 }.joined())
                FROM per_unit GROUP BY \(groupNames)
                """)
        }
    }

    /// Quantiles from the state: per group and quantile metric (slot), the number of values,
    /// the values at ranks ⌊h⌋ and ⌊h⌋ + 1 (0-based, h = q·(n − 1)) and h, found from the
    /// count of each distinct value — without a window the state's counts
    /// (`report_quantile_counts`) less the touched units' values in the state, with one the
    /// values of the state's rows of the units first exposed in it but the touched ones; plus the
    /// touched units' recomputed values. `addQuantileValues` interpolates as `percentile_cont`.
    func quantilesFromState(touched: [String]) -> PostgresQuery? {
        guard !quantileMetrics.isEmpty else { return nil }
        var b = Binder()
        let only = b.bind(touched) + "::text[]"
        let stateValues: String
        if query.from == nil && query.to == nil {
            let key = b.bind(experiment.key)
            stateValues = """
                SELECT q.variant, q.model, q.app_version, q.slot, q.value, q.count AS c FROM report_quantile_counts q
                WHERE q.experiment_key = \(key)
                UNION ALL
                SELECT r.variant, r.model, r.app_version, v.slot, v.value, -1
                FROM \(Self.quantileValues(of: "report_unit_dimensions", as: "r"))
                WHERE r.experiment_key = \(key) AND r.unit = ANY(\(only))
                """
        } else {
            stateValues = """
                SELECT r.variant, r.model, r.app_version, v.slot, v.value, 1 AS c
                FROM \(Self.quantileValues(of: "report_unit_dimensions", as: "r"))
                WHERE \(keptRows(&b, only: only))
                """
        }
        let fresh = perUnitState(&b, only: only, layout: .perDimension, columns: .quantiles)
        let qs = b.bind(quantileMetrics.map { $0.quantile ?? 0.5 })
        let groups = groupNames
        return b.query(
            """
            WITH counted AS (
                SELECT \(groups), slot, value, sum(c)::int8 AS c FROM (
                    \(stateValues)
                    UNION ALL
                    SELECT f.variant, f.model, f.app_version, v.slot, v.value, 1
                    FROM \(Self.quantileValues(of: "(\(fresh))", as: "f"))
                ) counts
                GROUP BY \(groups), slot, value HAVING sum(c) > 0
            ),
            ranked AS (
                SELECT \(groups), slot, value, sum(c) OVER (PARTITION BY \(groups), slot ORDER BY value) AS upto,
                       (sum(c) OVER (PARTITION BY \(groups), slot))::int8 AS n
                FROM counted
            ),
            positioned AS (SELECT *, (\(qs)::float8[])[slot + 1] * (n - 1)::float8 AS h FROM ranked)
            SELECT \(groups), slot, n, min(value) FILTER (WHERE upto > floor(h)), min(value) FILTER (WHERE upto > floor(h) + 1), min(h)
            FROM positioned GROUP BY \(groups), slot, n
            """)
    }

    /// With a window ending at `to`, the units a report from the state recomputes besides the
    /// touched ones: those first exposed in the window with events at or after `to` (their
    /// state's values hold events the window leaves out) and those served several variants
    /// (whose later variants may come after `to` and not count); nil without `to`.
    var windowRecompute: PostgresQuery? {
        guard let to = query.to else { return nil }
        var b = Binder()
        let key = b.bind(experiment.key)
        let end = b.bind(to)
        let stateWindow = Self.window("r.first_at", query, &b)
        let exposureWindow = Self.window("x.first_at", query, &b)
        return b.query(
            """
            SELECT r.unit FROM report_units r WHERE r.experiment_key = \(key)\(stateWindow) AND r.last_ts >= \(end)
            UNION ALL
            SELECT x.unit FROM exposures x WHERE x.experiment_key = \(key)\(exposureWindow) AND x.multiple
            """)
    }

    /// The quantile values of dimension rows `rows` (a table or subquery) named `alias`, one
    /// row each as `v` (slot, value) beside its row.
    static func quantileValues(of rows: String, as alias: String) -> String {
        "\(rows) \(alias) CROSS JOIN LATERAL unnest(\(alias).quantile_slots, \(alias).quantile_values) AS v(slot, value)"
    }

    /// Adds (`sign` 1) or takes away (−1) the quantile values of the state's dimension rows of
    /// every unit, or of `touched` ones, to or from `report_quantile_counts`; nil without
    /// quantile metrics. A refresh takes away the touched units' rows before deleting them and
    /// adds their rewritten ones, then drops the counts that reached 0 (`dropEmptyCounts`).
    func quantileCounts(touched: [String]?, sign: Int) -> PostgresQuery? {
        guard !quantileMetrics.isEmpty else { return nil }
        var b = Binder()
        let key = b.bind(experiment.key)
        let onlyUnits = touched.map { " AND r.unit = ANY(\(b.bind($0))::text[])" } ?? ""
        let factor = b.bind(sign)
        return b.query(
            """
            INSERT INTO report_quantile_counts AS q (experiment_key, variant, model, app_version, slot, value, count)
            SELECT r.experiment_key, r.variant, r.model, r.app_version, v.slot, v.value, count(*) * \(factor)
            FROM \(Self.quantileValues(of: "report_unit_dimensions", as: "r"))
            WHERE r.experiment_key = \(key)\(onlyUnits)
            GROUP BY r.experiment_key, r.variant, r.model, r.app_version, v.slot, v.value
            ON CONFLICT (experiment_key, variant, model, app_version, slot, value) DO UPDATE SET count = q.count + excluded.count
            """)
    }

    /// Deletes the counts of `quantileCounts` that reached 0.
    var dropEmptyCounts: PostgresQuery {
        "DELETE FROM report_quantile_counts WHERE experiment_key = \(experiment.key) AND count = 0"
    }

    static let comparisons = ["eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="]

    /// ` AND column >= from AND column < to` for the query's window.
    static func window(_ column: String, _ query: ReportQuery, _ b: inout Binder) -> String {
        var sql = ""
        if let from = query.from { sql += " AND \(column) >= \(b.bind(from))" }
        if let to = query.to { sql += " AND \(column) < \(b.bind(to))" }
        return sql
    }
}
