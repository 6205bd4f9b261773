import AviaryCore
import Foundation
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
    }

    public func aggregate(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery) async throws -> Aggregates {
        return try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            var b = Binder()
            let key = b.bind(experiment.key)
            let window = ReportSQL.window("e.ts", query, &b, selectsUnits: true)
            let claimed = b.query("SELECT EXISTS (SELECT 1 FROM events e WHERE e.experiment_key = \(key)\(window))")
            var claims = false
            for try await exists in try await connection.query(claimed, logger: database.logger).decode(Bool.self) { claims = exists }
            let plan = ReportSQL(experiment: experiment, metrics: metrics, query: query, claims: claims)
            // Settings are fixed strings of ReportSQL, never input.
            func set(_ settings: [String]) async throws {
                for setting in settings {
                    try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL \(setting)"), logger: database.logger)
                }
            }
            try await set(plan.settings)
            var exposed: [String: Int] = [:]
            for try await (variant, units) in try await connection.query(plan.exposedUnits, logger: database.logger).decode((String, Int).self) {
                exposed[variant] = units
            }
            var groups: [ReportGroupKey: GroupAggregate] = [:]
            for try await row in try await connection.query(plan.perGroup, logger: database.logger) {
                let cells = row.makeRandomAccess()
                let key = try plan.groupKey(cells)
                var aggregate = GroupAggregate(
                    key: key, unitsWithEvents: try cells[plan.dimensionCount].decode(Int.self),
                    events: try cells[plan.dimensionCount + 1].decode(Int.self), metrics: [:])
                var column = plan.dimensionCount + 2
                for metric in plan.unitMetrics {
                    func double(_ offset: Int) throws -> Double? { try cells[column + offset].decode(Double?.self) }
                    aggregate.metrics[metric.key] = MetricMoments(
                        n: try cells[column].decode(Int.self), mean: try double(1), variance: try double(2),
                        denominatorMean: try double(3), denominatorVariance: try double(4), covariance: try double(5))
                    column += ReportSQL.columnsPerMetric
                }
                groups[key] = aggregate
            }
            if let quantiles = plan.quantiles {
                // Quantiles read only their event types: a hash join of those events with the
                // units beats walking every unit's index again.
                try await set(["enable_hashjoin = on", "enable_mergejoin = on"])
                for try await row in try await connection.query(quantiles, logger: database.logger) {
                    let cells = row.makeRandomAccess()
                    let key = try plan.groupKey(cells)
                    var aggregate = groups[key] ?? GroupAggregate(key: key, unitsWithEvents: 0, events: 0, metrics: [:])
                    var column = plan.dimensionCount
                    for metric in plan.quantileMetrics {
                        aggregate.metrics[metric.key] = MetricMoments(
                            n: try cells[column].decode(Int.self), quantile: try cells[column + 1].decode(Double?.self))
                        column += 2
                    }
                    groups[key] = aggregate
                }
            }
            return Aggregates(exposedUnits: exposed, groups: Array(groups.values))
        }
    }
}

/// The statements of one report, with their bindings. Only fixed SQL text is spliced in
/// (column names chosen from enums); every value — experiment key, event types, `where`
/// operands, q, times — is a bind parameter.
///
/// The plan that scales is a nested loop: the experiment's units, each reading its own events
/// from the covering `events_user`/`events_anonymous` index (0005), split over parallel
/// workers that aggregate per unit before gathering. When no event names the experiment (no
/// `$exposure` claims), the units are the `exposures` rows themselves and hash and merge joins
/// are switched off: the planner's estimates would otherwise have it hash the events side or
/// gather every joined row into one process. With claims, the unit set is a union the planner
/// must be free to hash-join, and the defaults stay. Quantiles, which read only their own
/// event types, are a hash join of those events with the units in either case.
struct ReportSQL {
    static let columnsPerMetric = 6

    let query: ReportQuery
    let unitMetrics: [Metric]
    let quantileMetrics: [Metric]
    let dimensionCount: Int
    let settings: [String]
    let exposedUnits: PostgresQuery
    let perGroup: PostgresQuery
    let quantiles: PostgresQuery?

    init(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery, claims: Bool) {
        self.query = query
        unitMetrics = metrics.filter { $0.kind != .quantile }
        quantileMetrics = metrics.filter { $0.kind == .quantile }
        // Per-unit grouping (with the unit) and per-group grouping, over the attributed rows `e`.
        var dimensions = ["e.unit_variant"], names = ["variant"]
        if query.groupsByModel { dimensions.append("e.model"); names.append("model") }
        if query.groupsByAppVersion { dimensions.append("e.app_version"); names.append("app_version") }
        dimensionCount = dimensions.count
        let selectDimensions = zip(dimensions, names).map { "\($0) AS \($1)" }.joined(separator: ", ")
        let groupDimensions = dimensions.joined(separator: ", ")
        let outerDimensions = names.joined(separator: ", ")

        // A JIT compile costs more than it saves on these plans.
        var settings = ["work_mem = '256MB'", "jit = off", "statement_timeout = '55s'", "parallel_setup_cost = 0", "parallel_tuple_cost = 0"]
        if !claims { settings += ["enable_hashjoin = off", "enable_mergejoin = off"] }
        self.settings = settings

        func column(_ kind: UnitKind) -> String { kind == .userID ? "e.user_id" : "e.anonymous_id" }
        let unit = experiment.fallbackUnit.map { "COALESCE(\(column(experiment.unit)), \(column($0)))" } ?? column(experiment.unit)

        // The experiment's units with their variant and first exposure. Claims (events naming the
        // experiment) are a second source; the earlier exposure of a unit wins.
        func units(_ b: inout Binder) -> String {
            let key = b.bind(experiment.key)
            let exposureWindow = Self.window("x.first_at", query, &b, selectsUnits: true)
            guard claims else {
                return "units AS (SELECT x.unit, x.variant, x.first_at FROM exposures x WHERE x.experiment_key = \(key)\(exposureWindow))"
            }
            let eventWindow = Self.window("e.ts", query, &b, selectsUnits: true)
            return """
                claims AS (
                    SELECT \(unit) AS unit, (array_agg(e.variant ORDER BY e.ts))[1] AS variant, min(e.ts) AS first_at
                    FROM events e
                    WHERE e.experiment_key = \(key) AND \(unit) IS NOT NULL\(eventWindow)
                    GROUP BY 1
                ),
                units AS (
                    SELECT x.unit, CASE WHEN c.first_at < x.first_at THEN c.variant ELSE x.variant END AS variant,
                           LEAST(x.first_at, c.first_at) AS first_at
                    FROM exposures x LEFT JOIN claims c ON c.unit = x.unit
                    WHERE x.experiment_key = \(key)\(exposureWindow)
                    UNION ALL
                    SELECT c.unit, c.variant, c.first_at FROM claims c
                    WHERE NOT EXISTS (SELECT 1 FROM exposures x WHERE x.experiment_key = \(key) AND x.unit = c.unit\(exposureWindow))
                )
                """
        }
        // Each unit's events from its first exposure on, as rows `e`. With a fallback unit an
        // event belongs to its primary id when it has one, else to its fallback id: two joins,
        // each served by an index (a COALESCE could not be).
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

        var b = Binder()
        let exposureUnits = units(&b)
        exposedUnits = b.query("WITH \(exposureUnits) SELECT variant, count(*)::int8 FROM units GROUP BY variant")

        b = Binder()
        var perUnit: [String] = [], perGroupColumns: [String] = []
        for (i, metric) in unitMetrics.enumerated() {
            let m = "m\(i)", d = "d\(i)"
            var ratio = false
            switch metric.kind {
            case .count:
                perUnit.append("count(*) FILTER (WHERE e.type = \(b.bind(metric.event ?? "")))::float8 AS \(m)")
            case .sum:
                perUnit.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.event ?? ""))), 0) AS \(m)")
            case .mean:
                perUnit.append("avg(e.value) FILTER (WHERE e.type = \(b.bind(metric.event ?? ""))) AS \(m)")
            case .proportion:
                var condition = "e.type = \(b.bind(metric.event ?? ""))"
                if let filter = metric.filter, let op = Self.comparisons[filter.comparison] {
                    condition += " AND e.value \(op) \(b.bind(filter.operand))"
                }
                perUnit.append("(count(*) FILTER (WHERE \(condition)) > 0)::int::float8 AS \(m)")
            case .ratio:
                ratio = true
                perUnit.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.numerator ?? ""))), 0) AS \(m)")
                perUnit.append("coalesce(sum(e.value) FILTER (WHERE e.type = \(b.bind(metric.denominator ?? ""))), 0) AS \(d)")
            case .quantile:
                continue
            }
            perGroupColumns.append("count(\(m))::int8, avg(\(m)), var_samp(\(m))")
            perGroupColumns.append(
                ratio ? "avg(\(d)), var_samp(\(d)), covar_samp(\(m), \(d))" : "NULL::float8, NULL::float8, NULL::float8")
        }
        let unitsSQL = units(&b)
        let from = attributed(&b)
        perGroup = b.query(
            """
            WITH \(unitsSQL),
            per_unit AS (
                SELECT \(selectDimensions), count(*) AS events\(perUnit.map { ", " + $0 }.joined())
                \(from)
                GROUP BY \(groupDimensions), e.unit_key
            )
            SELECT \(outerDimensions), count(*)::int8, sum(events)::int8\(perGroupColumns.map { ", " + $0 }.joined())
            FROM per_unit GROUP BY \(outerDimensions)
            """)

        if quantileMetrics.isEmpty {
            quantiles = nil
        } else {
            b = Binder()
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
            quantiles = b.query(
                """
                WITH \(unitsSQL)
                SELECT \(groupDimensions), \(columns.joined(separator: ", "))
                \(from) AND e.type = ANY(\(types))
                GROUP BY \(groupDimensions)
                """)
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
