import AviaryCore
import Foundation
import PostgresNIO

/// The report state's statements (`ReportState`): the per-unit rows a refresh writes, the
/// units a report recomputes, and the report read from the state as from every event.
extension ReportSQL {
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
                SELECT variant, \(Self.groupCounts("count(*) FILTER (WHERE events > 0)"))\(perGroupColumns { "metrics[\($0 + 1)]" }.map { ", " + $0 }.joined())
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
                SELECT \(groupNames), \(Self.groupCounts("count(*)"))\(perGroupColumns { "v\($0)" }.map { ", " + $0 }.joined())
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
            SELECT \(groups), slot, n, min(value) FILTER (WHERE upto > floor(h)) AS low, min(value) FILTER (WHERE upto > floor(h) + 1) AS high,
                   min(h) AS h
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
}
