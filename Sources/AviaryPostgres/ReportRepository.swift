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
        let plan = ReportSQL(experiment: experiment, metrics: metrics, query: query)
        return try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            for setting in ReportSQL.settings {
                try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL \(setting)"), logger: database.logger)
            }
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
struct ReportSQL {
    static let columnsPerMetric = 6

    /// Settings of the report transaction (one snapshot for all statements).
    ///
    /// The plan that scales is a nested loop: the experiment's units, each walking its own
    /// events through the covering `events_user`/`events_anonymous` index (0005), split over
    /// parallel workers that aggregate per unit before gathering. The planner's estimates for
    /// the unit set are poor (a CTE, a union), and with them it picks hash joins that build on
    /// the events side and spill, or gathers every joined row to one process; so hash and
    /// merge joins are off, and parallel plans are made cheap to choose. A JIT compile costs
    /// more than it saves on these plans.
    static let settings = [
        "work_mem = '256MB'", "jit = off", "statement_timeout = '55s'",
        "enable_hashjoin = off", "enable_mergejoin = off",
        "parallel_setup_cost = 0", "parallel_tuple_cost = 0",
    ]

    let query: ReportQuery
    let unitMetrics: [Metric]
    let quantileMetrics: [Metric]
    let dimensionCount: Int
    let exposedUnits: PostgresQuery
    let perGroup: PostgresQuery
    let quantiles: PostgresQuery?

    init(experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery) {
        self.query = query
        unitMetrics = metrics.filter { $0.kind != .quantile }
        quantileMetrics = metrics.filter { $0.kind == .quantile }
        let eventDimensions = query.dimensions.compactMap { d -> String? in
            switch d {
            case .variant: nil
            case .model: "e.model"
            case .appVersion: "e.app_version"
            }
        }
        dimensionCount = 1 + eventDimensions.count
        let groupBy = (["u.variant"] + eventDimensions).joined(separator: ", ")
        let outerGroupBy = (["variant"] + eventDimensions.map { String($0.dropFirst(2)) }).joined(separator: ", ")

        func column(_ kind: UnitKind) -> String { kind == .userID ? "e.user_id" : "e.anonymous_id" }
        let unit = experiment.fallbackUnit.map { "COALESCE(\(column(experiment.unit)), \(column($0)))" } ?? column(experiment.unit)

        // Each statement gets its own bindings; `Binder` numbers them.
        func units(_ b: inout Binder) -> String {
            let key = b.bind(experiment.key)
            let eventWindow = Self.window("e.ts", query, &b)
            let exposureWindow = Self.window("x.first_at", query, &b)
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
        // Each unit's events from its first exposure on. With a fallback unit an event belongs
        // to its primary id when it has one, else to its fallback id: two index walks.
        func attributed(_ b: inout Binder) -> String {
            let key = b.bind(experiment.key)
            let window = Self.window("e.ts", query, &b)
            let columns = "e.type, e.value, e.model, e.app_version, e.experiment_key, e.variant"
            var walks = ["SELECT \(columns) FROM events e WHERE \(column(experiment.unit)) = u.unit AND e.ts >= u.first_at\(window)"]
            if let fallback = experiment.fallbackUnit {
                walks.append(
                    "SELECT \(columns) FROM events e WHERE \(column(experiment.unit)) IS NULL AND \(column(fallback)) = u.unit "
                        + "AND e.ts >= u.first_at\(window)")
            }
            return """
                FROM units u CROSS JOIN LATERAL (\(walks.joined(separator: " UNION ALL "))) e
                WHERE e.type <> '$exposure' AND (e.experiment_key IS DISTINCT FROM \(key) OR e.variant = u.variant)
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
                SELECT \(groupBy), count(*) AS events\(perUnit.map { ", " + $0 }.joined())
                \(from)
                GROUP BY \(groupBy), u.unit
            )
            SELECT \(outerGroupBy), count(*)::int8, sum(events)::int8\(perGroupColumns.map { ", " + $0 }.joined())
            FROM per_unit GROUP BY \(outerGroupBy)
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
                SELECT \(groupBy), \(columns.joined(separator: ", "))
                \(from) AND e.type = ANY(\(types))
                GROUP BY \(groupBy)
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

    static func window(_ column: String, _ query: ReportQuery, _ b: inout Binder) -> String {
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
