import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// Experiment reports and rollout guardrails, aggregated in PostgreSQL — per unit, then per
/// group — so that only a few rows per group reach Swift. Which units and events count, and for
/// which variant, is `ReportQuery.Attribution` (the rules of `ExposureHistory`); the statements
/// are `ReportSQL`, the per-unit state that spares reading every event is `ReportState`.
public struct ReportRepository: Sendable {
    let database: AviaryDatabase

    /// The raw numbers of one report: exposed units per variant and per-group aggregates.
    public struct Aggregates: Sendable {
        /// Units per variant: for an A/B report those served that variant only; for a rollout
        /// step the units with events counted for it.
        public var exposedUnits: [String: Int]
        /// Units served more than one variant, left out of every group (A/B reports only).
        public var multipleExposures: Int = 0
        public var groups: [GroupAggregate]
        /// True when the per-unit values came from the report state (with the units changed
        /// since its watermark recomputed), false when every event was read.
        public var fromState: Bool = false
    }

    /// The report's numbers; `readsState: false` reads every event even when a state exists.
    public func aggregate(
        experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery, readsState: Bool = true
    ) async throws -> Aggregates {
        let logger = database.logger
        return try await database.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { connection in
            let plan = ReportSQL(experiment: experiment, metrics: metrics, query: query)
            try await plan.apply(ReportSQL.settings, connection, logger: logger)
            var groups: [ReportGroupKey: GroupAggregate]
            var fromState = false
            // An A/B report (by variant, model or app version, with or without a window) starts
            // from the state when there is one for these metric definitions.
            if readsState, plan.readsState,
                let watermark = try await ReportState.watermark(connection, experiment: experiment.key, signature: plan.signature, logger: logger)
            {
                var touched = try await ReportState.touchedUnits(connection, plan: plan, since: watermark, logger: logger)
                if let recompute = plan.windowRecompute {
                    touched = Array(Set(touched).union(try await connection.query(recompute, logger: logger).values(String.self)))
                }
                groups = try await plan.groups(connection, plan.perGroupFromState(touched: touched), logger: logger)
                if let quantiles = plan.quantilesFromState(touched: touched) {
                    try await plan.addQuantileValues(connection, quantiles, to: &groups, logger: logger)
                }
                fromState = true
            } else {
                groups = try await plan.groups(connection, plan.perGroup, logger: logger)
                if let quantiles = plan.quantiles {
                    // Quantiles read only their event types: a hash join of those events with the
                    // units beats walking every unit's index again.
                    try await plan.apply(["enable_hashjoin = on", "enable_mergejoin = on"], connection, logger: logger)
                    try await plan.addQuantiles(connection, quantiles, to: &groups, logger: logger)
                }
            }
            var aggregates = Aggregates(exposedUnits: [:], groups: Array(groups.values), fromState: fromState)
            switch query.attribution {
            case .servedAt:
                for group in groups.values { aggregates.exposedUnits[group.key.variant, default: 0] += group.unitsWithEvents }
            case .firstExposure:
                for try await (variant, units) in try await connection.query(plan.exposedUnits, logger: logger).decode((String?, Int).self) {
                    if let variant { aggregates.exposedUnits[variant] = units } else { aggregates.multipleExposures = units }
                }
            }
            return aggregates
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
        return try await database.withConnection { connection in
            // A session lock, taken before the transaction's snapshot: a replica that gets it
            // after another's refresh sees what that one wrote.
            let lock = AdvisoryLock.reportState(experiment: experiment.key)
            guard try await lock.tryLock(on: connection, logger: logger) else { return .busy }
            func unlock() async throws { try await lock.unlock(on: connection, logger: logger) }
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
        return try await connection.transaction(begin: "BEGIN ISOLATION LEVEL REPEATABLE READ", logger: logger) { connection in
            let plan = ReportSQL(experiment: experiment, metrics: metrics, query: ReportQuery())
            try await plan.apply(ReportSQL.settings + ["statement_timeout = '30min'"], connection, logger: logger)
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
                if let counts = plan.quantileCounts(touched: units, sign: -1) { try await connection.query(counts, logger: logger) }
                try await connection.query(
                    "DELETE FROM report_units WHERE experiment_key = \(key) AND unit = ANY(\(units)::text[])", logger: logger)
                try await connection.query(
                    "DELETE FROM report_unit_dimensions WHERE experiment_key = \(key) AND unit = ANY(\(units)::text[])", logger: logger)
                touched = units
            } else {
                try await connection.query("DELETE FROM report_units WHERE experiment_key = \(key)", logger: logger)
                try await connection.query("DELETE FROM report_unit_dimensions WHERE experiment_key = \(key)", logger: logger)
                try await connection.query("DELETE FROM report_quantile_counts WHERE experiment_key = \(key)", logger: logger)
                touched = nil
            }
            let written = try await connection.query(plan.insertState(touched: touched, layout: .perUnit), logger: logger).value(Int.self) ?? 0
            try await connection.query(plan.insertState(touched: touched, layout: .perDimension), logger: logger)
            if let counts = plan.quantileCounts(touched: touched, sign: 1) {
                try await connection.query(counts, logger: logger)
                if previous != nil { try await connection.query(plan.dropEmptyCounts, logger: logger) }
            }
            // Fresh statistics, or the planner takes a rebuilt state for a few rows.
            if previous == nil {
                try await connection.query("ANALYZE report_units", logger: logger)
                try await connection.query("ANALYZE report_unit_dimensions", logger: logger)
                try await connection.query("ANALYZE report_quantile_counts", logger: logger)
            }
            return previous == nil ? .rebuilt(units: written) : .folded(units: written)
        }
    }
}
