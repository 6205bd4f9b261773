import AviaryCore
import Logging
import PostgresNIO

/// Running `ReportSQL`'s statements and reading their rows into per-group aggregates.
extension ReportSQL {
    /// `SET LOCAL` of fixed settings of this type, never input.
    func apply(_ settings: [String], _ connection: PostgresConnection, logger: Logger) async throws {
        for setting in settings {
            try await connection.query(PostgresQuery(unsafeSQL: "SET LOCAL \(setting)"), logger: logger)
        }
    }

    /// The per-group aggregates of `perGroup` or `perGroupFromState`, read by column name.
    func groups(_ connection: PostgresConnection, _ statement: PostgresQuery, logger: Logger) async throws -> [ReportGroupKey: GroupAggregate] {
        var groups: [ReportGroupKey: GroupAggregate] = [:]
        for try await row in try await connection.query(statement, logger: logger) {
            let cells = row.makeRandomAccess()
            let key = try groupKey(cells)
            var aggregate = GroupAggregate(
                key: key, unitsWithEvents: try cells.column("units_with_events").decode(Int.self),
                events: try cells.column("events").decode(Int.self), metrics: [:])
            for (index, metric) in unitMetrics.enumerated() {
                func double(_ moment: MomentColumn) throws -> Double? { try cells.column(moment.name(index)).decode(Double?.self) }
                aggregate.metrics[metric.key] = MetricMoments(
                    n: try cells.column(MomentColumn.n.name(index)).decode(Int.self), mean: try double(.mean), variance: try double(.variance),
                    denominatorMean: try double(.pairedMean), denominatorVariance: try double(.pairedVariance), covariance: try double(.covariance))
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
            let values = try quantileMetrics.enumerated().map { index, metric in
                (metric.key, MetricMoments(n: try cells.column("q\(index)_n").decode(Int.self), quantile: try cells.column("q\(index)_value").decode(Double?.self)))
            }
            Self.adding(try groupKey(cells), &groups) { aggregate in for (key, moments) in values { aggregate.metrics[key] = moments } }
        }
    }

    /// Adds the quantiles of `quantilesFromState`, interpolated between the two ranks around
    /// h as `percentile_cont` does: lo + (h − ⌊h⌋)·(hi − lo), lo alone when h is whole.
    func addQuantileValues(
        _ connection: PostgresConnection, _ statement: PostgresQuery, to groups: inout [ReportGroupKey: GroupAggregate], logger: Logger
    ) async throws {
        for try await row in try await connection.query(statement, logger: logger) {
            let cells = row.makeRandomAccess()
            let slot = Int(try cells.column("slot").decode(Int16.self))
            guard quantileMetrics.indices.contains(slot) else { continue }
            let n = try cells.column("n").decode(Int.self)
            let low = try cells.column("low").decode(Double?.self), high = try cells.column("high").decode(Double?.self)
            let h = try cells.column("h").decode(Double.self)
            var value = low
            if let low, let high, h != h.rounded(.down) { value = low + (high - low) * (h - h.rounded(.down)) }
            Self.adding(try groupKey(cells), &groups) { aggregate in
                aggregate.metrics[quantileMetrics[slot].key] = MetricMoments(n: n, quantile: value)
            }
        }
    }

    func groupKey(_ cells: PostgresRandomAccessRow) throws -> ReportGroupKey {
        var key = ReportGroupKey(variant: try cells.column("variant").decode(String.self))
        if query.groupsByModel { key.model = try cells.column("model").decode(String?.self) }
        if query.groupsByAppVersion { key.appVersion = try cells.column("app_version").decode(String?.self) }
        return key
    }
}

extension PostgresRandomAccessRow {
    /// The cell of column `name`; a statement without it is an error, never a crash.
    func column(_ name: String) throws -> PostgresCell {
        guard contains(name) else { throw MissingColumn(name: name) }
        return self[name]
    }

    struct MissingColumn: Error, CustomStringConvertible {
        let name: String
        var description: String { "a report statement has no column \(name)" }
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
