import Foundation

/// One unit's exposures to one experiment: the first time it was served each variant, by
/// assignment or by an event naming the experiment (`docs/api.md`, "Which variant an event
/// counts for"). Ramps and rollouts move units between variants, so a unit may have several.
///
/// The two rules that read it live here, and the SQL of reports and guardrails
/// (`AviaryPostgres/ReportSQL`) is tested against them:
/// - a rollout step counts each event for the variant the unit was served at the event's time
///   (`variant(at:)`);
/// - an A/B report keeps only units served exactly one variant, with their events from that
///   exposure on (`reportVariant(forEventAt:)`).
public struct ExposureHistory: Sendable, Hashable {
    public struct Exposure: Sendable, Hashable {
        public var variant: String
        /// When the unit was first served `variant`.
        public var at: Date

        public init(variant: String, at: Date) {
            self.variant = variant
            self.at = at
        }
    }

    /// One exposure per variant, ordered by time and, at the same instant, by variant key.
    public private(set) var exposures: [Exposure] = []

    public init(_ exposures: [Exposure] = []) {
        for exposure in exposures { record(exposure.variant, at: exposure.at) }
    }

    /// Records that the unit was served `variant` at `time`. Serving a variant again changes
    /// nothing but an earlier first time (replicas may report out of order).
    public mutating func record(_ variant: String, at time: Date) {
        if let index = exposures.firstIndex(where: { $0.variant == variant }) {
            guard time < exposures[index].at else { return }
            exposures.remove(at: index)
        }
        exposures.append(Exposure(variant: variant, at: time))
        exposures.sort(by: Self.precedes)
    }

    /// Time order; at the same instant, variant keys in byte order (SQL's `COLLATE "C"`), so
    /// the exposure whose key sorts last is the latest.
    static func precedes(_ a: Exposure, _ b: Exposure) -> Bool {
        a.at != b.at ? a.at < b.at : Array(a.variant.utf8).lexicographicallyPrecedes(Array(b.variant.utf8))
    }

    /// The variant the unit was served at `time`: its latest exposure at or before it (an event
    /// at the very instant of an exposure counts for that exposure's variant); nil before the
    /// first exposure.
    public func variant(at time: Date) -> String? {
        exposures.last { $0.at <= time }?.variant
    }

    /// Served more than one variant: such a unit is left out of every A/B comparison.
    public var isMultiple: Bool { exposures.count > 1 }

    /// The variant an A/B report counts an event at `time` for: the unit's only variant, from
    /// its exposure on; nil for a unit served several variants, or before its exposure.
    public func reportVariant(forEventAt time: Date) -> String? {
        guard exposures.count == 1, let only = exposures.first, only.at <= time else { return nil }
        return only.variant
    }
}
