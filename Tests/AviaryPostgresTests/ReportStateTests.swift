import AviaryCore
import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

@testable import AviaryPostgres

/// The report state (migration 0007) against the same report read from every event: equal
/// after a rebuild, and after each kind of change since the watermark — events of a unit in the
/// state, an exposure recorded after its unit's events, an exposure moved earlier, a claim, a unit
/// served a second variant — both before and after the next fold; with CUPED's pre-exposure
/// values too.
@Suite(.serialized) struct ReportStateTests {
    static let experiment = ExperimentDefinition(
        key: "chat", variants: [Variant(key: "a", value: 1), Variant(key: "b", value: 2)], control: "a",
        rules: [Rule(name: "everyone", serve: .split([.init(variant: "a", weight: 5_000), .init(variant: "b", weight: 5_000)]))])
    /// The same experiment with CUPED over the day before each unit's exposure.
    static let cuped = {
        var cuped = experiment
        cuped.analysis = AnalysisSettings(cuped: true, cupedDays: 1)
        return cuped
    }()
    static let metrics = [
        Metric(key: "messages", kind: .count, event: "message"),
        Metric(key: "spend", kind: .sum, event: "purchase"),
        Metric(key: "rating", kind: .mean, event: "rating"),
        Metric(key: "thumbs", kind: .proportion, event: "feedback", filter: .init(comparison: "eq", operand: 1)),
        Metric(key: "errors", kind: .ratio, numerator: "error", denominator: "request"),
        Metric(key: "p90", kind: .quantile, event: "latency", quantile: 0.9),
        Metric(key: "median", kind: .quantile, event: "latency", quantile: 0.5),
    ]
    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)

    static func expose(_ db: AviaryDatabase, _ unit: String, _ variant: String, at offset: Double) async throws {
        try await db.exposures.record([Exposure(experiment: experiment.key, unit: unit, variant: variant, at: t0.addingTimeInterval(offset))])
    }

    /// Events of `unit` at t0 + offset, as ingestion stores them: (type, value) pairs; `claim`
    /// names the experiment's variant.
    static func send(_ db: AviaryDatabase, _ unit: String, at offset: Double, _ events: [(String, Double)], claim: String? = nil) async throws {
        let ts = t0.addingTimeInterval(offset)
        // Models and app versions vary within a unit's events, so reports by them split units.
        _ = try await db.events.insert(events.enumerated().map { i, event in
            Event(id: UUID(), type: event.0, userID: unit, anonymousID: nil, ts: ts, value: event.1,
                  model: [nil, "gpt-4o", "qwen-max"][i % 3], appVersion: i % 2 == 0 ? "1.9.0" : nil,
                  experiment: claim == nil ? nil : experiment.key, variant: claim)
        })
    }

    static func report(
        _ db: AviaryDatabase, _ experiment: ExperimentDefinition = experiment, metrics: [Metric] = metrics, query: ReportQuery = ReportQuery(),
        state: Bool
    ) async throws -> ReportRepository.Aggregates {
        try await db.reports.aggregate(experiment: experiment, metrics: metrics, query: query, readsState: state)
    }

    /// Reports by variant, and by model, app version and both (`report_unit_dimensions`), each
    /// without a window and with windows: one that ends after every event, one that cuts u1's
    /// later events and ends when u4 is served a second variant (so that u4 still counts), one
    /// without an end and one without a start.
    static let queries = [[ReportDimension.variant], [.variant, .model], [.variant, .appVersion], [.variant, .model, .appVersion]]
        .flatMap { dimensions in
            [(nil, nil), (3.0, 500.0), (0, 90), (-70, nil), (nil, 61)].map { (from: Double?, to: Double?) in
                ReportQuery(dimensions: dimensions, from: from.map { t0.addingTimeInterval($0) }, to: to.map { t0.addingTimeInterval($0) })
            }
        }

    /// The state's report equals the one from every event (to rounding) and came from the state.
    static func expectStateMatchesEvents(_ db: AviaryDatabase, _ experiment: ExperimentDefinition = experiment, _ what: Comment) async throws {
        for query in queries {
            try await expectStateMatchesEvents(
                db, experiment, query,
                "\(what), by \(query.dimensions.map(\.rawValue)) from \(String(describing: query.from)) to \(String(describing: query.to))")
        }
        try await expectCountsMatchRows(db, what)
    }

    /// `report_quantile_counts` holds exactly the counts of the dimension rows' values, none 0.
    static func expectCountsMatchRows(_ db: AviaryDatabase, _ what: Comment) async throws {
        let differing = try await db.client.query(
            """
            WITH kept AS (SELECT experiment_key, variant, model, app_version, slot, value, count FROM report_quantile_counts),
            counted AS (
                SELECT r.experiment_key, r.variant, r.model, r.app_version, v.slot, v.value, count(*) AS count
                FROM report_unit_dimensions r CROSS JOIN LATERAL unnest(r.quantile_slots, r.quantile_values) AS v(slot, value)
                GROUP BY 1, 2, 3, 4, 5, 6
            )
            SELECT count(*)::int8 FROM ((TABLE kept EXCEPT TABLE counted) UNION ALL (TABLE counted EXCEPT TABLE kept)) d
            """, logger: db.logger
        ).value(Int.self)
        #expect(differing == 0, "quantile counts differ from the state's rows: \(what)")
    }

    static func expectStateMatchesEvents(_ db: AviaryDatabase, _ experiment: ExperimentDefinition, _ query: ReportQuery, _ what: Comment) async throws {
        let fromState = try await report(db, experiment, query: query, state: true)
        let fromEvents = try await report(db, experiment, query: query, state: false)
        #expect(fromState.fromState && !fromEvents.fromState, what)
        #expect(fromState.exposedUnits == fromEvents.exposedUnits && fromState.multipleExposures == fromEvents.multipleExposures, what)
        let expected = Dictionary(uniqueKeysWithValues: fromEvents.groups.map { ($0.key, $0) })
        #expect(fromState.groups.count == expected.count, what)
        for group in fromState.groups {
            guard let other = expected[group.key] else {
                Issue.record("group \(group.key) only in the state's report: \(what)")
                continue
            }
            #expect(group.unitsWithEvents == other.unitsWithEvents && group.events == other.events, "\(what): \(group.key)")
            #expect(Set(group.metrics.keys) == Set(other.metrics.keys), what)
            for (key, moments) in group.metrics {
                guard let o = other.metrics[key] else { continue }
                #expect(moments.n == o.n, "\(what): \(group.key.variant) \(key) n")
                for (a, b, field) in [
                    (moments.mean, o.mean, "mean"), (moments.variance, o.variance, "variance"), (moments.quantile, o.quantile, "quantile"),
                    (moments.denominatorMean, o.denominatorMean, "denominator mean"),
                    (moments.denominatorVariance, o.denominatorVariance, "denominator variance"), (moments.covariance, o.covariance, "covariance"),
                ] {
                    #expect(close(a, b), "\(what): \(group.key.variant) \(key) \(field) \(String(describing: a)) vs \(String(describing: b))")
                }
            }
        }
    }

    static func close(_ a: Double?, _ b: Double?) -> Bool {
        guard let a, let b else { return a == nil && b == nil }
        return abs(a - b) <= 1e-12 * max(1, abs(a), abs(b))
    }

    static func countStateRows(_ db: AviaryDatabase) async throws -> Int {
        var n = 0
        for try await count in try await db.client.query("SELECT count(*)::int8 FROM report_units", logger: db.logger).decode(Int.self) { n = count }
        return n
    }

    @Test(arguments: [false, true])
    func theStateAnswersAsEveryEventDoesThroughEachKindOfChange(cuped: Bool) async throws {
        let experiment = cuped ? Self.cuped : Self.experiment
        try await TestDatabase.withMigrated { _, db in
            // Defined, so that events naming it are exposures.
            _ = try await db.experiments.execute(.create(.object(experiment.json)), key: experiment.key, actor: nil)
            for i in 0..<12 {
                let unit = "u\(i)", variant = i % 2 == 0 ? "a" : "b"
                try await Self.expose(db, unit, variant, at: Double(i))
                // Before the exposure: never counted, but as CUPED's pre-exposure value.
                try await Self.send(db, unit, at: -100, [("message", 1), ("purchase", 50)])
                var events: [(String, Double)] = [("message", 1), ("purchase", Double(i) * 1.25), ("latency", 100 + Double(i * i))]
                if i % 3 != 0 { events += [("rating", Double(1 + i % 5)), ("feedback", Double(i % 2)), ("request", 1)] }
                if i % 4 == 1 { events += [("error", 1), ("latency", 900)] }
                try await Self.send(db, unit, at: 60, events)
            }
            // Events of a unit not exposed yet: they count once its exposure is recorded.
            try await Self.send(db, "late", at: 60, [("message", 1), ("message", 1), ("latency", 333)])
            // Without a state the report reads every event.
            #expect(try await Self.report(db, experiment, state: true).fromState == false)

            // Whatever was received within the watermark's margin would be recomputed anyway;
            // past it, only what changes below is.
            try await Task.sleep(for: .milliseconds(1_200))
            #expect(try await db.reports.refreshState(experiment: experiment, metrics: Self.metrics) == .rebuilt(units: 12))
            try await Self.expectStateMatchesEvents(db, experiment, "after a rebuild")
            // With CUPED the counts, sums and proportions carry their pre-exposure values: one
            // message and a purchase of 50 for every unit, 100 s before its exposure.
            for group in try await Self.report(db, experiment, state: true).groups {
                let pre = [group.metrics["messages"]?.denominatorMean, group.metrics["spend"]?.denominatorMean]
                #expect(pre == (cuped ? [1, 50] : [nil, nil]), "\(group.key.variant): \(pre)")
                #expect(group.metrics["rating"]?.denominatorMean == nil)
            }

            // New events of a unit in the state.
            try await Self.send(db, "u1", at: 120, [("message", 1), ("rating", 5), ("error", 1), ("request", 1), ("latency", 10_000)])
            // An exposure recorded after its unit's events.
            try await Self.expose(db, "late", "b", at: 30)
            // An exposure moved earlier: the unit's earlier events now count.
            try await Self.send(db, "u2", at: -50, [("purchase", 7), ("latency", 1)])
            try await Self.expose(db, "u2", "a", at: -60)
            try await Self.expectStateMatchesEvents(db, experiment, "changes since the watermark")
            #expect(try await Self.report(db, experiment, state: true).exposedUnits == ["a": 6, "b": 7])

            #expect(try await db.reports.refreshState(experiment: experiment, metrics: Self.metrics) == .folded(units: 3))
            try await Self.expectStateMatchesEvents(db, experiment, "after a fold")
            #expect(try await Self.countStateRows(db) == 13)

            // A claim: a unit exposed only by a `$exposure` event. Then units of the state served
            // a second variant: u3 claimed for a (it was in b), u4 assigned b after a. Both leave
            // their groups, before and after the fold.
            try await Self.send(db, "claimed", at: 10, [("$exposure", 1)], claim: "a")
            try await Self.send(db, "claimed", at: 20, [("message", 1), ("purchase", 3)])
            try await Self.send(db, "u3", at: 1, [("$exposure", 1)], claim: "a")
            try await Self.expose(db, "u4", "b", at: 90)
            try await Self.expectStateMatchesEvents(db, experiment, "claims and second variants since the watermark")
            let moved = try await Self.report(db, experiment, state: true)
            #expect(moved.exposedUnits == ["a": 6, "b": 6] && moved.multipleExposures == 2)
            _ = try await db.reports.refreshState(experiment: experiment, metrics: Self.metrics)
            try await Self.expectStateMatchesEvents(db, experiment, "claims and second variants folded")
            #expect(try await Self.countStateRows(db) == 12)

            // Other metric definitions: the state is not used until rebuilt for them.
            let fewer = Array(Self.metrics.prefix(2))
            #expect(try await Self.report(db, experiment, metrics: fewer, state: true).fromState == false)
            #expect(try await db.reports.refreshState(experiment: experiment, metrics: fewer) == .rebuilt(units: 12))
            #expect(try await Self.report(db, experiment, metrics: fewer, state: true).fromState)
        }
    }

    @Test func aQuantileFromTheStateIsPercentileCont() async throws {
        try await TestDatabase.withMigrated { _, db in
            // Ties, a single value and an even count: ranks and interpolation as percentile_cont.
            let values: [Double] = [5, 1, 1, 3, 8, 8, 8, 2.5, 13, 21]
            for (i, value) in values.enumerated() {
                try await Self.expose(db, "q\(i)", i < 9 ? "a" : "b", at: 0)
                try await Self.send(db, "q\(i)", at: 10, [("latency", value)])
            }
            _ = try await db.reports.refreshState(experiment: Self.experiment, metrics: Self.metrics)
            try await Self.expectStateMatchesEvents(db, Self.experiment, "quantiles")
            let groups = try await Self.report(db, state: true).groups
            let a = try #require(groups.first { $0.key.variant == "a" })
            // numpy.quantile([5, 1, 1, 3, 8, 8, 8, 2.5, 13], [0.9, 0.5]) = [8.999999999999998, 5.0]
            #expect(abs((a.metrics["p90"]?.quantile ?? 0) - 9) < 1e-9)
            #expect(a.metrics["median"]?.quantile == 5 && a.metrics["p90"]?.n == 9)
            let b = try #require(groups.first { $0.key.variant == "b" })
            #expect(b.metrics["p90"]?.quantile == 21 && b.metrics["median"]?.n == 1)
        }
    }
}
