import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// The SQL behind experiment reports (SPEC 8). Everything is aggregated in PostgreSQL — per
/// unit, then per group — and only a few rows per group reach Swift.
///
/// Attribution: a unit belongs to the experiment from its first exposure, the earliest of its
/// assignment exposure (`exposures`) and any event naming the experiment (`$exposure` events
/// from clients that evaluate flags elsewhere, or any event carrying `experiment`/`variant`),
/// in the variant of that first exposure. Its events count from that moment on; an event
/// naming the experiment counts for the variant it names, which is the unit's variant unless
/// the unit was first exposed to another one (then the event is left out: a unit is in one
/// variant only). `$exposure` events mark exposures and are not counted as events.
public struct ReportRepository: Sendable {
    let database: AviaryDatabase

    /// The raw numbers of one report: exposed units per variant and per-group aggregates.
    public struct Aggregates: Sendable {
        public var exposedUnits: [String: Int]
        public var groups: [GroupAggregate]
        /// True when the per-unit values came from the report state (with the units changed
        /// since its watermark recomputed), false when every event was read.
        public var fromState: Bool = false
    }

    /// The report's numbers; `readsState: false` reads every event even when a state exists.
    public func aggregate(
        experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery, readsState: Bool = true
    ) async throws -> Aggregates {
        return try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            let plan = try await ReportSQL.plan(connection, experiment: experiment, metrics: metrics, query: query, logger: database.logger)
            try await plan.apply(plan.settings, connection, logger: database.logger)
            var exposed: [String: Int] = [:]
            for try await (variant, units) in try await connection.query(plan.exposedUnits, logger: database.logger).decode((String, Int).self) {
                exposed[variant] = units
            }
            // The standard report (per variant, no window) starts from the state when there is
            // one for these metric definitions; everything else reads the events.
            if readsState, query.variantOnly, query.from == nil, query.to == nil,
                let watermark = try await ReportState.watermark(connection, experiment: experiment.key, signature: plan.signature, logger: database.logger)
            {
                let touched = try await ReportState.touchedUnits(connection, plan: plan, since: watermark, logger: database.logger)
                var groups = try await plan.groups(connection, plan.perGroupFromState(touched: touched), logger: database.logger)
                if let quantiles = plan.quantilesFromState(touched: touched) {
                    try await plan.addQuantileValues(connection, quantiles, to: &groups, logger: database.logger)
                }
                return Aggregates(exposedUnits: exposed, groups: Array(groups.values), fromState: true)
            }
            var groups = try await plan.groups(connection, plan.perGroup, logger: database.logger)
            if let quantiles = plan.quantiles {
                // Quantiles read only their event types: a hash join of those events with the
                // units beats walking every unit's index again.
                try await plan.apply(["enable_hashjoin = on", "enable_mergejoin = on"], connection, logger: database.logger)
                try await plan.addQuantiles(connection, quantiles, to: &groups, logger: database.logger)
            }
            return Aggregates(exposedUnits: exposed, groups: Array(groups.values))
        }
    }

    /// What a refresh of an experiment's report state did.
    public enum Refresh: Equatable, Sendable {
        /// Computed from every event: there was no state, or one for other metric definitions.
        case rebuilt(units: Int)
        /// The units changed since the watermark were recomputed.
        case folded(units: Int)
        /// Another replica was refreshing it.
        case busy
    }

    /// Brings an experiment's report state up to date (see `ReportState`). Replicas may call it
    /// together: one refreshes, the others are told `.busy`.
    public func refreshState(experiment: ExperimentDefinition, metrics: [Metric]) async throws -> Refresh {
        let logger = database.logger
        // Read before the refresh's snapshot: whatever started earlier has ended by then.
        let watermark = try await ReportState.currentWatermark(database)
        return try await database.client.withConnection { connection in
            // A session lock, taken before the transaction's snapshot: a replica that gets it
            // after another's refresh sees what that one wrote.
            let lock = ReportState.lockPrefix + experiment.key
            let locked = try await connection.query("SELECT pg_try_advisory_lock(hashtext(\(lock)))", logger: logger).value(Bool.self)
            guard locked == true else { return .busy }
            func unlock() async throws { try await connection.query("SELECT pg_advisory_unlock(hashtext(\(lock)))", logger: logger) }
            do {
                let outcome = try await refresh(experiment: experiment, metrics: metrics, watermark: watermark, on: connection)
                try await unlock()
                return outcome
            } catch {
                // Never hand a connection holding the lock back to the pool.
                if (try? await unlock()) == nil { try? await connection.close() }
                throw error
            }
        }
    }

    private func refresh(experiment: ExperimentDefinition, metrics: [Metric], watermark: Date, on connection: PostgresConnection) async throws -> Refresh {
        let logger = database.logger
        return try await database.transaction(on: connection, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ") { connection in
            let plan = try await ReportSQL.plan(connection, experiment: experiment, metrics: metrics, query: ReportQuery(), logger: logger)
            try await plan.apply(plan.settings + ["statement_timeout = '30min'"], connection, logger: logger)
            let key = experiment.key
            let previous = try await ReportState.watermark(connection, experiment: key, signature: plan.signature, logger: logger)
            try await connection.query(
                """
                INSERT INTO report_states (experiment_key, signature, watermark) VALUES (\(key), \(plan.signature), \(watermark))
                ON CONFLICT (experiment_key) DO UPDATE SET signature = excluded.signature, watermark = excluded.watermark, refreshed_at = now()
                """, logger: logger)
            let touched: [String]?
            if let previous {
                let units = try await ReportState.touchedUnits(connection, plan: plan, since: previous, logger: logger)
                try await connection.query(
                    "DELETE FROM report_units WHERE experiment_key = \(key) AND unit = ANY(\(units)::text[])", logger: logger)
                touched = units
            } else {
                try await connection.query("DELETE FROM report_units WHERE experiment_key = \(key)", logger: logger)
                touched = nil
            }
            let written = try await connection.query(plan.insertState(touched: touched), logger: logger).value(Int.self) ?? 0
            // Fresh statistics, or the planner takes a rebuilt state for a few rows.
            if previous == nil { try await connection.query("ANALYZE report_units", logger: logger) }
            return previous == nil ? .rebuilt(units: written) : .folded(units: written)
        }
    }
}

/// The report state (migration 0007): per experiment, one row per unit with its per-unit values,
/// exact as of a watermark. The watermark is a time before which every writing transaction had
/// ended when the state's snapshot was taken: events (`received_at`) and exposures
/// (`recorded_at`) carry their transaction's start time, so whatever the state could not see is
/// stamped at or after the watermark. A report or a refresh recomputes, from the events, every
/// unit with such an event or exposure (the touched units) and takes the others from the state.
/// The state is therefore never stale, only slower to read the longer it goes unrefreshed.
///
/// The writers must be sessions whose `pg_stat_activity` rows Aviary's role can read (its own
/// role, or any with `pg_read_all_stats`).
enum ReportState {
    /// The session advisory lock of an experiment's refresh is hashtext of this and the key.
    static let lockPrefix = "aviary.report_state:"

    /// The start of the oldest transaction still open in this database (less a second for a
    /// transaction that has taken its start time but not yet published it), or now.
    static func currentWatermark(_ database: AviaryDatabase) async throws -> Date {
        let rows = try await database.client.query(
            """
            SELECT least(now() - interval '1 second', min(xact_start) - interval '1 second')
            FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()
            """, logger: database.logger)
        guard let watermark = try await rows.value(Date.self) else { throw StoredDataError(description: "pg_stat_activity gave no watermark") }
        return watermark
    }

    /// The state's watermark when it exists and was computed for `signature`.
    static func watermark(_ connection: PostgresConnection, experiment: String, signature: String, logger: Logger) async throws -> Date? {
        try await connection.query(
            "SELECT watermark FROM report_states WHERE experiment_key = \(experiment) AND signature = \(signature)", logger: logger
        ).value(Date.self)
    }

    /// Units that may have changed since `watermark`: the units of events received since, and of
    /// the experiment's exposures recorded since. Without claims every unit is an exposure, so
    /// only the experiment's are kept; with claims every such event's unit is (a superset).
    static func touchedUnits(_ connection: PostgresConnection, plan: ReportSQL, since watermark: Date, logger: Logger) async throws -> [String] {
        var units: [String] = []
        for try await unit in try await connection.query(plan.touchedUnits(since: watermark), logger: logger).decode(String.self) {
            units.append(unit)
        }
        return units
    }
}

/// The statements of one report, with their bindings. Only fixed SQL text is spliced in
/// (column names chosen from enums); every value — experiment key, event types, `where`
/// operands, q, times, units — is a bind parameter.
///
/// The plan that scales is a nested loop: the experiment's units, each reading its own events
/// from the covering `events_user`/`events_anonymous` index (0005), split over parallel
/// workers that aggregate per unit before gathering. When no event names the experiment (no
/// `$exposure` claims), the units are the `exposures` rows themselves and hash and merge joins
/// are switched off: the planner's estimates would otherwise have it hash the events side or
/// gather every joined row into one process. With claims, the unit set is a union the planner
/// must be free to hash-join, and the defaults stay. Quantiles, which read only their own
/// event types, are a hash join of those events with the units in either case.
///
/// The same per-unit values feed the report state (`ReportState`): written per unit by a
/// refresh, and recomputed for the touched units when a report reads the state.
struct ReportSQL {
    static let columnsPerMetric = 6

    let experiment: ExperimentDefinition
    let query: ReportQuery
    let claims: Bool
    let unitMetrics: [Metric]
    let quantileMetrics: [Metric]
    let dimensionCount: Int
    let settings: [String]

    /// The plan of a report on `connection`, which first looks for claims (events naming the
    /// experiment) in the query's window.
    static func plan(
        _ connection: PostgresConnection, experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery, logger: Logger
    ) async throws -> ReportSQL {
        var b = Binder()
        let key = b.bind(experiment.key)
        let window = window("e.ts", query, &b, selectsUnits: true)
        let claimed = b.query("SELECT EXISTS (SELECT 1 FROM events e WHERE e.experiment_key = \(key)\(window))")
        let claims = try await connection.query(claimed, logger: logger).value(Bool.self) ?? false
        return ReportSQL(experiment: experiment, metrics: metrics, query: query, claims: claims)
    }

    init(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery, claims: Bool) {
        self.experiment = experiment
        self.query = query
        self.claims = claims
        unitMetrics = metrics.filter { $0.kind != .quantile }
        quantileMetrics = metrics.filter { $0.kind == .quantile }
        // A JIT compile costs more than it saves on these plans.
        var settings = ["work_mem = '256MB'", "jit = off", "statement_timeout = '55s'", "parallel_setup_cost = 0", "parallel_tuple_cost = 0"]
        if !claims { settings += ["enable_hashjoin = off", "enable_mergejoin = off"] }
        self.settings = settings
        dimensionCount = 1 + (query.groupsByModel ? 1 : 0) + (query.groupsByAppVersion ? 1 : 0)
    }

    /// Per-unit grouping (with the unit) and per-group grouping, over the attributed rows `e`.
    private var dimensions: [(column: String, name: String)] {
        var dimensions = [("e.unit_variant", "variant")]
        if query.groupsByModel { dimensions.append(("e.model", "model")) }
        if query.groupsByAppVersion { dimensions.append(("e.app_version", "app_version")) }
        return dimensions
    }

    /// Units exposed per variant.
    var exposedUnits: PostgresQuery {
        var b = Binder()
        let exposureUnits = units(&b)
        return b.query("WITH \(exposureUnits) SELECT variant, count(*)::int8 FROM units GROUP BY variant")
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
                SELECT \(selectDimensions), count(*) AS events\(perUnit.map { ", " + $0 }.joined())
                \(from)
                GROUP BY \(dimensions.map(\.column).joined(separator: ", ")), e.unit_key
            )
            SELECT \(outerDimensions), count(*)::int8, sum(events)::int8\(perGroupColumns { "v\($0)" }.map { ", " + $0 }.joined())
            FROM per_unit GROUP BY \(outerDimensions)
            """)
    }

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
            \(from) AND e.type = ANY(\(types))
            GROUP BY \(groupDimensions)
            """)
    }

    func column(_ kind: UnitKind) -> String { kind == .userID ? "e.user_id" : "e.anonymous_id" }

    /// The experiment's units with their variant and first exposure, as `units`; with `only`
    /// (a bound text[]), just those units. Claims (events naming the experiment) are a second
    /// source; the earlier exposure of a unit wins.
    func units(_ b: inout Binder, only: String? = nil) -> String {
        let key = b.bind(experiment.key)
        let exposureWindow = Self.window("x.first_at", query, &b, selectsUnits: true)
        let onlyExposures = only.map { " AND x.unit = ANY(\($0))" } ?? ""
        guard claims else {
            return "units AS (SELECT x.unit, x.variant, x.first_at FROM exposures x WHERE x.experiment_key = \(key)\(exposureWindow)\(onlyExposures))"
        }
        let eventWindow = Self.window("e.ts", query, &b, selectsUnits: true)
        let unit = experiment.fallbackUnit.map { "COALESCE(\(column(experiment.unit)), \(column($0)))" } ?? column(experiment.unit)
        let onlyClaims = only.map { " AND \(unit) = ANY(\($0))" } ?? ""
        return """
            claims AS (
                SELECT \(unit) AS unit, (array_agg(e.variant ORDER BY e.ts))[1] AS variant, min(e.ts) AS first_at
                FROM events e
                WHERE e.experiment_key = \(key) AND \(unit) IS NOT NULL\(eventWindow)\(onlyClaims)
                GROUP BY 1
            ),
            units AS (
                SELECT x.unit, CASE WHEN c.first_at < x.first_at THEN c.variant ELSE x.variant END AS variant,
                       LEAST(x.first_at, c.first_at) AS first_at
                FROM exposures x LEFT JOIN claims c ON c.unit = x.unit
                WHERE x.experiment_key = \(key)\(exposureWindow)\(onlyExposures)
                UNION ALL
                SELECT c.unit, c.variant, c.first_at FROM claims c
                WHERE NOT EXISTS (SELECT 1 FROM exposures x WHERE x.experiment_key = \(key) AND x.unit = c.unit\(exposureWindow))
            )
            """
    }

    /// Each unit's events from its first exposure on, as rows `e`. With a fallback unit an
    /// event belongs to its primary id when it has one, else to its fallback id: two joins,
    /// each served by an index (a COALESCE could not be).
    func attributed(_ b: inout Binder) -> String {
        let key = b.bind(experiment.key)
        let window = Self.window("e.ts", query, &b)
        let columns = "u.variant AS unit_variant, u.unit AS unit_key, e.type, e.value, e.model, e.app_version, e.experiment_key, e.variant"
        var walks = ["SELECT \(columns) FROM units u JOIN events e ON \(column(experiment.unit)) = u.unit AND e.ts >= u.first_at\(window)"]
        if let fallback = experiment.fallbackUnit {
            walks.append(
                "SELECT \(columns) FROM units u JOIN events e ON \(column(experiment.unit)) IS NULL AND \(column(fallback)) = u.unit "
                    + "AND e.ts >= u.first_at\(window)")
        }
        return """
            FROM (\(walks.joined(separator: " UNION ALL "))) e
            WHERE e.type <> '$exposure' AND (e.experiment_key IS DISTINCT FROM \(key) OR e.variant = e.unit_variant)
            """
    }

    /// Per-unit aggregates over the rows `e` of one unit: one per count/sum/mean/proportion
    /// metric, two (numerator, denominator) per ratio metric, in metric order.
    func perUnitValues(_ b: inout Binder) -> [String] {
        var values: [String] = []
        for metric in unitMetrics {
            switch metric.kind {
            case .count:
                values.append("count(*) FILTER (WHERE e.type = \(b.bind(metric.event ?? "")))::float8")
            case .sum:
                values.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.event ?? ""))), 0)")
            case .mean:
                values.append("avg(e.value) FILTER (WHERE e.type = \(b.bind(metric.event ?? "")))")
            case .proportion:
                var condition = "e.type = \(b.bind(metric.event ?? ""))"
                if let filter = metric.filter, let op = Self.comparisons[filter.comparison] {
                    condition += " AND e.value \(op) \(b.bind(filter.operand))"
                }
                values.append("(count(*) FILTER (WHERE \(condition)) > 0)::int::float8")
            case .ratio:
                values.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.numerator ?? ""))), 0)")
                values.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.denominator ?? ""))), 0)")
            case .quantile:
                continue
            }
        }
        return values
    }

    /// Per-group columns, `columnsPerMetric` per unit metric (n, mean, variance, and for a
    /// ratio the denominator's mean and variance and the covariance), over the per-unit values
    /// named by `value(i)` (the i-th of `perUnitValues`).
    func perGroupColumns(_ value: (Int) -> String) -> [String] {
        var columns: [String] = [], i = 0
        for metric in unitMetrics {
            let m = value(i)
            columns.append("count(\(m))::int8, avg(\(m)), var_samp(\(m))")
            if metric.kind == .ratio {
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
        var parts = ["unit=\(experiment.unit.rawValue)", "fallback=\(experiment.fallbackUnit?.rawValue ?? "")"]
        for metric in unitMetrics + quantileMetrics {
            guard case .object(var definition) = metric.json else { continue }
            for field in ["name", "description", "revision", "created_at", "updated_at"] { definition[field] = nil }
            parts.append(JSON.object(definition).canonicalString())
        }
        return parts.joined(separator: "\n")
    }

    // MARK: Report state

    /// Which columns of the state's per-unit rows a statement needs: a report's two statements
    /// each recompute only their half for the touched units (the other half is NULL).
    enum StateColumns { case all, metrics, quantiles }

    /// The per-unit rows of the state (unit, variant, events, metrics, quantile slots and
    /// values) for the units `units` selects, over rows `e`.
    private func perUnitState(_ b: inout Binder, only: String?, columns: StateColumns = .all) -> String {
        var metrics = "NULL::float8[]"
        if columns != .quantiles {
            let values = perUnitValues(&b)
            metrics = values.isEmpty ? "'{}'::float8[]" : "ARRAY[\(values.joined(separator: ", "))]::float8[]"
        }
        var slots = "NULL::int2[]", quantileValues = "NULL::float8[]"
        if columns != .metrics, !quantileMetrics.isEmpty {
            var slotParts: [String] = [], valueParts: [String] = []
            for (slot, metric) in quantileMetrics.enumerated() {
                let agg = "array_agg(e.value) FILTER (WHERE e.type = \(b.bind(metric.event ?? "")))"
                valueParts.append("coalesce(\(agg), '{}')")
                slotParts.append("array_fill(\(slot)::int2, ARRAY[coalesce(cardinality(\(agg)), 0)])")
            }
            slots = slotParts.joined(separator: " || ")
            quantileValues = valueParts.joined(separator: " || ")
        }
        let unitsSQL = units(&b, only: only)
        var from = attributed(&b)
        if columns == .quantiles { from += " AND e.type = ANY(\(b.bind(quantileMetrics.map { $0.event ?? "" })))" }
        return """
            WITH \(unitsSQL)
            SELECT e.unit_key AS unit, e.unit_variant AS variant, count(*) AS events, \(metrics) AS metrics,
                   \(slots) AS quantile_slots, \(quantileValues) AS quantile_values
            \(from)
            GROUP BY e.unit_variant, e.unit_key
            """
    }

    /// Writes the state rows of every unit, or of `touched` ones; answers how many.
    func insertState(touched: [String]?) -> PostgresQuery {
        var b = Binder()
        let key = b.bind(experiment.key)
        let only = touched.map { b.bind($0) + "::text[]" }
        let rows = perUnitState(&b, only: only)
        return b.query(
            """
            WITH written AS (
                INSERT INTO report_units (experiment_key, unit, variant, events, metrics, quantile_slots, quantile_values)
                SELECT \(key), s.unit, s.variant, s.events, s.metrics, s.quantile_slots, s.quantile_values FROM (\(rows)) s
                RETURNING 1
            )
            SELECT count(*)::int8 FROM written
            """)
    }

    /// Units with events received, or exposures recorded, at or after `watermark` (see
    /// `ReportState.touchedUnits`).
    func touchedUnits(since watermark: Date) -> PostgresQuery {
        var b = Binder()
        let key = b.bind(experiment.key)
        let since = b.bind(watermark)
        var kinds = [experiment.unit]
        if let fallback = experiment.fallbackUnit { kinds.append(fallback) }
        let eventUnits = kinds.map { "SELECT \(column($0)) AS unit FROM events e WHERE e.received_at >= \(since) AND \(column($0)) IS NOT NULL" }
        let member = claims ? "" : " WHERE EXISTS (SELECT 1 FROM exposures x WHERE x.experiment_key = \(key) AND x.unit = t.unit)"
        return b.query(
            """
            SELECT t.unit FROM (\(eventUnits.joined(separator: " UNION ALL "))) t\(member)
            UNION
            SELECT x.unit FROM exposures x WHERE x.experiment_key = \(key) AND x.recorded_at >= \(since)
            """)
    }

    /// The state's units but the touched ones, and the touched ones recomputed, as `all_units`.
    private func stateUnits(_ b: inout Binder, touched: [String], columns: StateColumns) -> String {
        let key = b.bind(experiment.key)
        let only = b.bind(touched) + "::text[]"
        let fresh = perUnitState(&b, only: only, columns: columns)
        return """
            all_units AS (
                SELECT r.variant, r.events, r.metrics, r.quantile_slots, r.quantile_values FROM report_units r
                WHERE r.experiment_key = \(key) AND NOT (r.unit = ANY(\(only)))
                UNION ALL
                SELECT f.variant, f.events, f.metrics, f.quantile_slots, f.quantile_values FROM (\(fresh)) f
            )
            """
    }

    /// `perGroup`, from the state.
    func perGroupFromState(touched: [String]) -> PostgresQuery {
        var b = Binder()
        let all = stateUnits(&b, touched: touched, columns: .metrics)
        return b.query(
            """
            WITH \(all)
            SELECT variant, count(*)::int8, sum(events)::int8\(perGroupColumns { "metrics[\($0 + 1)]" }.map { ", " + $0 }.joined())
            FROM all_units GROUP BY variant
            """)
    }

    /// Quantiles from the state: per variant and quantile metric (slot), the number of values,
    /// the values at ranks ⌊h⌋ and ⌊h⌋ + 1 (0-based, h = q·(n − 1)) and h, found from the
    /// count of each distinct value; `addQuantileValues` interpolates as `percentile_cont`.
    func quantilesFromState(touched: [String]) -> PostgresQuery? {
        guard !quantileMetrics.isEmpty else { return nil }
        var b = Binder()
        let all = stateUnits(&b, touched: touched, columns: .quantiles)
        let qs = b.bind(quantileMetrics.map { $0.quantile ?? 0.5 })
        return b.query(
            """
            WITH \(all),
            counted AS (
                SELECT s.variant, s.slot, s.value, count(*) AS c
                FROM (SELECT variant, unnest(quantile_slots) AS slot, unnest(quantile_values) AS value FROM all_units) s
                GROUP BY 1, 2, 3
            ),
            ranked AS (
                SELECT variant, slot, value, sum(c) OVER (PARTITION BY variant, slot ORDER BY value) AS upto,
                       (sum(c) OVER (PARTITION BY variant, slot))::int8 AS n
                FROM counted
            ),
            positioned AS (SELECT *, (\(qs)::float8[])[slot + 1] * (n - 1)::float8 AS h FROM ranked)
            SELECT variant, slot, n, min(value) FILTER (WHERE upto > floor(h)), min(value) FILTER (WHERE upto > floor(h) + 1), min(h)
            FROM positioned GROUP BY variant, slot, n
            """)
    }

    // MARK: Running the statements

    /// `SET LOCAL` of fixed settings of this type, never input.
    func apply(_ settings: [String], _ connection: PostgresConnection, logger: Logger) async throws {
        for setting in settings {
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL \(setting)"), logger: logger)
        }
    }

    /// The per-group aggregates of `perGroup` or `perGroupFromState`.
    func groups(_ connection: PostgresConnection, _ statement: PostgresQuery, logger: Logger) async throws -> [ReportGroupKey: GroupAggregate] {
        var groups: [ReportGroupKey: GroupAggregate] = [:]
        for try await row in try await connection.query(statement, logger: logger) {
            let cells = row.makeRandomAccess()
            let key = try groupKey(cells)
            var aggregate = GroupAggregate(
                key: key, unitsWithEvents: try cells[dimensionCount].decode(Int.self),
                events: try cells[dimensionCount + 1].decode(Int.self), metrics: [:])
            var column = dimensionCount + 2
            for metric in unitMetrics {
                func double(_ offset: Int) throws -> Double? { try cells[column + offset].decode(Double?.self) }
                aggregate.metrics[metric.key] = MetricMoments(
                    n: try cells[column].decode(Int.self), mean: try double(1), variance: try double(2),
                    denominatorMean: try double(3), denominatorVariance: try double(4), covariance: try double(5))
                column += Self.columnsPerMetric
            }
            groups[key] = aggregate
        }
        return groups
    }

    private static func adding(_ key: ReportGroupKey, _ groups: inout [ReportGroupKey: GroupAggregate], _ change: (inout GroupAggregate) -> Void) {
        var aggregate = groups[key] ?? GroupAggregate(key: key, unitsWithEvents: 0, events: 0, metrics: [:])
        change(&aggregate)
        groups[key] = aggregate
    }

    /// Adds the quantiles of `quantiles` (n and value per quantile metric, per group).
    func addQuantiles(_ connection: PostgresConnection, _ statement: PostgresQuery, to groups: inout [ReportGroupKey: GroupAggregate], logger: Logger) async throws {
        for try await row in try await connection.query(statement, logger: logger) {
            let cells = row.makeRandomAccess()
            var values: [(String, MetricMoments)] = []
            var column = dimensionCount
            for metric in quantileMetrics {
                values.append((metric.key, MetricMoments(n: try cells[column].decode(Int.self), quantile: try cells[column + 1].decode(Double?.self))))
                column += 2
            }
            Self.adding(try groupKey(cells), &groups) { aggregate in for (key, moments) in values { aggregate.metrics[key] = moments } }
        }
    }

    /// Adds the quantiles of `quantilesFromState`, interpolated between the two ranks around
    /// h as `percentile_cont` does: lo + (h − ⌊h⌋)·(hi − lo), lo alone when h is whole.
    func addQuantileValues(
        _ connection: PostgresConnection, _ statement: PostgresQuery, to groups: inout [ReportGroupKey: GroupAggregate], logger: Logger
    ) async throws {
        for try await (variant, slot, n, low, high, h) in try await connection.query(statement, logger: logger).decode(
            (String, Int16, Int, Double?, Double?, Double).self)
        {
            guard quantileMetrics.indices.contains(Int(slot)) else { continue }
            var value = low
            if let low, let high, h != h.rounded(.down) { value = low + (high - low) * (h - h.rounded(.down)) }
            Self.adding(ReportGroupKey(variant: variant), &groups) { aggregate in
                aggregate.metrics[quantileMetrics[Int(slot)].key] = MetricMoments(n: n, quantile: value)
            }
        }
    }

    func groupKey(_ cells: PostgresRandomAccessRow) throws -> ReportGroupKey {
        var key = ReportGroupKey(variant: try cells[0].decode(String.self))
        var index = 1
        if query.groupsByModel {
            key.model = try cells[index].decode(String?.self)
            index += 1
        }
        if query.groupsByAppVersion { key.appVersion = try cells[index].decode(String?.self) }
        return key
    }

    static let comparisons = ["eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="]

    /// ` AND column >= from AND column < to` for the query's window; empty for a window on
    /// units (`selectsUnits`) when the query does not window exposures.
    static func window(_ column: String, _ query: ReportQuery, _ b: inout Binder, selectsUnits: Bool = false) -> String {
        if selectsUnits, !query.windowsExposures { return "" }
        var sql = ""
        if let from = query.from { sql += " AND \(column) >= \(b.bind(from))" }
        if let to = query.to { sql += " AND \(column) < \(b.bind(to))" }
        return sql
    }
}

/// Numbered bind parameters for a statement built piece by piece.
struct Binder {
    private var bindings = PostgresBindings()

    mutating func bind<T: PostgresNonThrowingEncodable>(_ value: T) -> String {
        bindings.append(value)
        return "$\(bindings.count)"
    }

    func query(_ sql: String) -> PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: bindings) }
}
