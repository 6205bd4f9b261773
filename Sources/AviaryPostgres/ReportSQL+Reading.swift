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
        for try await row in try await connection.query(statement, logger: logger) {
            let cells = row.makeRandomAccess()
            let slot = Int(try cells[dimensionCount].decode(Int16.self))
            guard quantileMetrics.indices.contains(slot) else { continue }
            let n = try cells[dimensionCount + 1].decode(Int.self)
            let low = try cells[dimensionCount + 2].decode(Double?.self), high = try cells[dimensionCount + 3].decode(Double?.self)
            let h = try cells[dimensionCount + 4].decode(Double.self)
            var value = low
            if let low, let high, h != h.rounded(.down) { value = low + (high - low) * (h - h.rounded(.down)) }
            Self.adding(try groupKey(cells), &groups) { aggregate in
                aggregate.metrics[quantileMetrics[slot].key] = MetricMoments(n: n, quantile: value)
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
