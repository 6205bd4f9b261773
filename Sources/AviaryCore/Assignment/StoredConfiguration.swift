import Foundation

/// The active configuration as read from storage, row by row: what could be read, what could
/// not, and for each running experiment that could not be read, a stand-in serving its
/// control. `ConfigSnapshot(stored:previous:)` decides what is served from it.
public struct StoredConfiguration: Sendable {
    public var revision: String
    public var experiments: [Experiment]
    public var cohorts: [Cohort]
    public var optedOut: Set<String>
    public var unreadable: [UnreadableObject]
    /// Control-only experiments for unreadable ones whose control could still be told.
    public var standIns: [Experiment]

    public init(
        revision: String, experiments: [Experiment], cohorts: [Cohort], optedOut: Set<String>, unreadable: [UnreadableObject] = [],
        standIns: [Experiment] = []
    ) {
        self.revision = revision
        self.experiments = experiments
        self.cohorts = cohorts
        self.optedOut = optedOut
        self.unreadable = unreadable
        self.standIns = standIns
    }
}

extension ConfigSnapshot {
    /// The snapshot to serve from `stored`: an object that cannot be read keeps the version
    /// `previous` served, if it served one; otherwise an unreadable experiment serves its stand-in
    /// — its control to everyone, as a killed flag — or, without one, is not served at all.
    public init(stored: StoredConfiguration, previous: ConfigSnapshot) {
        var experiments = stored.experiments
        var cohorts = stored.cohorts
        let standIns = Dictionary(stored.standIns.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        for object in stored.unreadable {
            switch object.kind {
            case .experiment:
                if let last = previous.source(experiment: object.key) ?? standIns[object.key] { experiments.append(last) }
            case .cohort:
                if let last = previous.source(cohort: object.key) { cohorts.append(last) }
            case .metric, .key:
                break
            }
        }
        self.init(revision: stored.revision, experiments: experiments, cohorts: cohorts, optedOut: stored.optedOut, unreadable: stored.unreadable)
    }
}

extension Experiment {
    /// A stand-in for a stored experiment that cannot be read: the stored document's `control`
    /// variant served to everyone (no rules, so no unit is counted in it), with the stored
    /// status. Nil when the document does not name a control among its variants: no guessing
    /// of weights or variants.
    public static func controlOnly(
        key: String, document: JSON?, status: ExperimentStatus, revision: Int, createdAt: Date, updatedAt: Date
    ) -> Experiment? {
        guard let document, let control = document["control"]?.stringValue,
            let variant = document["variants"]?.arrayValue?.first(where: { $0["key"]?.stringValue == control })
        else { return nil }
        let unit = document["unit"]?.stringValue.flatMap(UnitKind.init(rawValue:)) ?? .userID
        let definition = ExperimentDefinition(
            key: key, unit: unit, variants: [Variant(key: control, value: variant["value"] ?? .null)], control: control, rules: [])
        return Experiment(definition: definition, status: status, revision: revision, createdAt: createdAt, updatedAt: updatedAt)
    }
}
