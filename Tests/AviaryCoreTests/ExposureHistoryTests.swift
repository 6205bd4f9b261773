import AviaryCore
import Foundation
import Testing

/// Which variant an event counts for (`docs/api.md`, "Which variant an event counts for"), on
/// its edges. The SQL of reports and guardrails is checked against these rules in
/// `AviaryPostgresTests/AttributionTests`.
struct ExposureHistoryTests {
    static let t0 = Date(timeIntervalSince1970: 1_790_000_000)
    static func at(_ offset: Double) -> Date { t0.addingTimeInterval(offset) }

    static func history(_ exposures: [(String, Double)]) -> ExposureHistory {
        var history = ExposureHistory()
        for (variant, offset) in exposures { history.record(variant, at: at(offset)) }
        return history
    }

    @Test func anEventBeforeAnyExposureCountsForNoVariant() {
        let h = Self.history([("control", 10)])
        #expect(h.variant(at: Self.at(9.999)) == nil)
        #expect(h.reportVariant(forEventAt: Self.at(9.999)) == nil)
        #expect(h.variant(at: Self.at(11)) == "control" && h.reportVariant(forEventAt: Self.at(11)) == "control")
        #expect(ExposureHistory().variant(at: Self.at(0)) == nil && !ExposureHistory().isMultiple)
    }

    @Test func anEventBetweenTwoExposuresCountsForTheEarlierOne() {
        let h = Self.history([("control", 0), ("canary", 10)])
        #expect(h.variant(at: Self.at(5)) == "control")
        #expect(h.variant(at: Self.at(15)) == "canary")
        // A unit served two variants is in no A/B group, whenever its events came.
        #expect(h.isMultiple && h.reportVariant(forEventAt: Self.at(5)) == nil && h.reportVariant(forEventAt: Self.at(15)) == nil)
    }

    @Test func anEventAtTheInstantOfAnExposureCountsForIt() {
        let h = Self.history([("control", 0), ("canary", 10)])
        #expect(h.variant(at: Self.at(10)) == "canary")
        #expect(h.variant(at: Self.at(0)) == "control")
        #expect(Self.history([("canary", 10)]).reportVariant(forEventAt: Self.at(10)) == "canary")
        // Two variants first served at one instant: the key that sorts last in byte order.
        let tie = Self.history([("control", 10), ("canary", 10)])
        #expect(tie.variant(at: Self.at(10)) == "control" && tie.variant(at: Self.at(11)) == "control")
        #expect(Self.history([("b_x", 1), ("bx", 1), ("b-x", 1)]).variant(at: Self.at(1)) == "bx")
    }

    @Test func aUnitMovedBackKeepsTheFirstTimeOfEachVariant() {
        // A rollback serves the control without an exposure; a split edited back serves the
        // control again, which the history already holds: nothing new is recorded, so events
        // after it still count for the canary, and the unit stays out of A/B reports.
        var h = Self.history([("control", 0), ("canary", 10)])
        h.record("control", at: Self.at(20))
        #expect(h.exposures == [.init(variant: "control", at: Self.at(0)), .init(variant: "canary", at: Self.at(10))])
        #expect(h.variant(at: Self.at(25)) == "canary" && h.variant(at: Self.at(5)) == "control")
        #expect(h.isMultiple && h.reportVariant(forEventAt: Self.at(25)) == nil)
    }

    @Test func claimsThatDisagreeWithTheAssignmentAreExposuresToo() {
        // Assigned the control, then an event naming the canary: the unit moves at the claim.
        let later = Self.history([("control", 0), ("canary", 5)])
        #expect(later.variant(at: Self.at(3)) == "control" && later.variant(at: Self.at(5)) == "canary")
        #expect(later.isMultiple)
        // A claim before the assignment: the canary first, then the control.
        let earlier = Self.history([("control", 0), ("canary", -5)])
        #expect(earlier.variant(at: Self.at(-3)) == "canary" && earlier.variant(at: Self.at(2)) == "control")
        // A claim that agrees adds nothing.
        let agreeing = Self.history([("canary", 0), ("canary", 7)])
        #expect(!agreeing.isMultiple && agreeing.reportVariant(forEventAt: Self.at(8)) == "canary")
    }

    @Test func replicasReportingOutOfOrderKeepTheEarliestTimes() {
        var h = ExposureHistory()
        h.record("b", at: Self.at(10))
        h.record("a", at: Self.at(0))
        h.record("b", at: Self.at(5))
        h.record("a", at: Self.at(3))
        #expect(h.exposures == [.init(variant: "a", at: Self.at(0)), .init(variant: "b", at: Self.at(5))])
        #expect(h == ExposureHistory([.init(variant: "b", at: Self.at(5)), .init(variant: "a", at: Self.at(0))]))
    }
}
