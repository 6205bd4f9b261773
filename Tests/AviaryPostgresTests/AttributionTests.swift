import AviaryCore
import AviaryTestSupport
import Foundation
import Testing

@testable import AviaryPostgres

/// The SQL of reports and rollout guardrails counts each event for the variant `ExposureHistory`
/// says, on the edges of the rules: an event before any exposure, between two exposures, at the
/// instant of one, two exposures at one instant, a unit moved back, claims that disagree with the
/// assignment, a step's window. Each case is an experiment of its own with a unit of its own; every event
/// has its own power of two as its value, so a group's sum says exactly which events it counted.
@Suite struct AttributionTests {
    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)
    static let metric = Metric(key: "value", kind: .sum, event: "request")

    struct Case: Sendable {
        var name: String
        /// Assignment exposures: (variant, offset).
        var exposures: [(String, Double)]
        /// Events: (offset, the variant it names, if any; `$exposure` when it only claims).
        var events: [(Double, String?, String)]
        /// The start of the rollout step (guardrails read events from it).
        var stepFrom: Double = -1_000
    }

    static let cases: [Case] = [
        Case(name: "before-any-exposure", exposures: [("control", 10)], events: [(5, nil, "request"), (15, nil, "request")]),
        Case(name: "between-two-exposures", exposures: [("control", 0), ("canary", 10)],
             events: [(-1, nil, "request"), (5, nil, "request"), (10, nil, "request"), (15, nil, "request")]),
        Case(name: "same-instant", exposures: [("canary", 10)], events: [(10, nil, "request"), (9.999, nil, "request")]),
        Case(name: "two-at-one-instant", exposures: [("control", 10), ("canary", 10)], events: [(10, nil, "request"), (12, nil, "request")]),
        Case(name: "moved-back", exposures: [("control", 0), ("canary", 10), ("control", 20)],
             events: [(5, nil, "request"), (15, nil, "request"), (25, nil, "request")]),
        Case(name: "claim-after-assignment", exposures: [("control", 0)],
             events: [(3, nil, "request"), (5, "canary", "$exposure"), (7, "canary", "request"), (8, nil, "request")]),
        Case(name: "claim-before-assignment", exposures: [("control", 0)],
             events: [(-5, "canary", "$exposure"), (-3, nil, "request"), (2, nil, "request"), (4, "control", "request")]),
        Case(name: "agreeing-claim", exposures: [("canary", 0)], events: [(1, "canary", "$exposure"), (2, nil, "request"), (-2, nil, "request")]),
        Case(name: "step-window", exposures: [("control", 0), ("canary", 10)],
             events: [(5, nil, "request"), (11, nil, "request"), (15, nil, "request")], stepFrom: 12),
    ]

    static func definition(_ key: String) -> ExperimentDefinition {
        ExperimentDefinition(
            key: key, variants: [Variant(key: "control", value: 1), Variant(key: "canary", value: 2)], control: "control",
            rules: [Rule(name: "everyone", serve: .split([.init(variant: "control", weight: 5_000), .init(variant: "canary", weight: 5_000)]))])
    }

    /// Per variant: events counted and the sum of their values.
    static func expected(_ c: Case, _ rule: (ExposureHistory, Date) -> String?) -> [String: (events: Int, sum: Double)] {
        var history = ExposureHistory()
        for (variant, offset) in c.exposures { history.record(variant, at: t0.addingTimeInterval(offset)) }
        for (offset, claim, _) in c.events { if let claim { history.record(claim, at: t0.addingTimeInterval(offset)) } }
        var result: [String: (events: Int, sum: Double)] = [:]
        for (index, (offset, claim, type)) in c.events.enumerated() where type == "request" {
            guard let variant = rule(history, t0.addingTimeInterval(offset)), claim == nil || claim == variant else { continue }
            result[variant, default: (0, 0)].events += 1
            result[variant, default: (0, 0)].sum += Double(1 << index)
        }
        return result
    }

    static func observed(_ aggregates: ReportRepository.Aggregates) -> [String: (events: Int, sum: Double)] {
        var result: [String: (events: Int, sum: Double)] = [:]
        for group in aggregates.groups where group.events > 0 {
            let moments = group.metrics[metric.key]
            result[group.key.variant] = (group.events, (moments?.mean ?? 0) * Double(moments?.n ?? 0))
        }
        return result
    }

    static func same(_ a: [String: (events: Int, sum: Double)], _ b: [String: (events: Int, sum: Double)]) -> Bool {
        Set(a.keys) == Set(b.keys) && a.allSatisfy { key, value in
            value.events == b[key]!.events && abs(value.sum - b[key]!.sum) < 1e-6
        }
    }

    @Test func reportsAndGuardrailsCountEachEventAsTheHistorySays() async throws {
        try await TestDatabase.withMigrated { _, db in
            for c in Self.cases {
                let definition = Self.definition(c.name), unit = "unit-" + c.name
                _ = try await db.experiments.execute(.create(.object(definition.json)), key: definition.key, actor: nil)
                for (variant, offset) in c.exposures {
                    try await db.exposures.record([Exposure(experiment: c.name, unit: unit, variant: variant, at: Self.t0.addingTimeInterval(offset))])
                }
                _ = try await db.events.insert(c.events.enumerated().map { index, e in
                    Event(id: UUID(), type: e.2, userID: unit, anonymousID: nil, ts: Self.t0.addingTimeInterval(e.0), value: Double(1 << index),
                          experiment: e.1 == nil ? nil : c.name, variant: e.1)
                })
                var history = try await db.exposures.history(experiment: c.name, unit: unit)
                var expectedHistory = ExposureHistory()
                for (variant, offset) in c.exposures { expectedHistory.record(variant, at: Self.t0.addingTimeInterval(offset)) }
                for (offset, claim, _) in c.events { if let claim { expectedHistory.record(claim, at: Self.t0.addingTimeInterval(offset)) } }
                #expect(history == expectedHistory, "\(c.name): the stored history")
                history = expectedHistory

                let from = Self.t0.addingTimeInterval(c.stepFrom)
                let step = try await db.reports.aggregate(
                    experiment: definition, metrics: [Self.metric], query: ReportQuery(from: from, attribution: .servedAt))
                let served = Self.expected(c) { history, time in time >= from ? history.variant(at: time) : nil }
                #expect(Self.same(Self.observed(step), served), "\(c.name): a rollout step counted \(Self.observed(step)), not \(served)")
                #expect(step.exposedUnits.filter { $0.value > 0 } == served.mapValues { _ in 1 }, "\(c.name): units of the step")

                let report = try await db.reports.aggregate(experiment: definition, metrics: [Self.metric], query: ReportQuery())
                let reported = Self.expected(c) { history, time in history.reportVariant(forEventAt: time) }
                #expect(Self.same(Self.observed(report), reported), "\(c.name): the report counted \(Self.observed(report)), not \(reported)")
                #expect(report.multipleExposures == (history.isMultiple ? 1 : 0), "\(c.name): multiple exposures")
                let only = history.isMultiple ? [:] : [history.exposures[0].variant: 1]
                #expect(report.exposedUnits == only, "\(c.name): exposed units")
            }
        }
    }

    @Test func aWindowedReportIsNotChangedByLaterVariants() async throws {
        try await TestDatabase.withMigrated { _, db in
            let definition = Self.definition("window")
            _ = try await db.experiments.execute(.create(.object(definition.json)), key: definition.key, actor: nil)
            try await db.exposures.record([Exposure(experiment: "window", unit: "u", variant: "control", at: Self.t0)])
            _ = try await db.events.insert([Event(id: UUID(), type: "request", userID: "u", anonymousID: nil, ts: Self.t0.addingTimeInterval(5))])
            let to = Self.t0.addingTimeInterval(50)
            let before = try await db.reports.aggregate(experiment: definition, metrics: [Self.metric], query: ReportQuery(to: to))
            #expect(before.exposedUnits == ["control": 1] && before.multipleExposures == 0)
            // Served the canary after the window: the window's report stays; the standing one drops the unit.
            try await db.exposures.record([Exposure(experiment: "window", unit: "u", variant: "canary", at: Self.t0.addingTimeInterval(60))])
            let after = try await db.reports.aggregate(experiment: definition, metrics: [Self.metric], query: ReportQuery(to: to))
            #expect(after.exposedUnits == ["control": 1] && after.multipleExposures == 0 && Self.same(Self.observed(after), Self.observed(before)))
            let standing = try await db.reports.aggregate(experiment: definition, metrics: [Self.metric], query: ReportQuery())
            #expect(standing.exposedUnits.isEmpty && standing.multipleExposures == 1 && standing.groups.allSatisfy { $0.events == 0 })
        }
    }
}
