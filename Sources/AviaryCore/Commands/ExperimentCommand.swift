import Foundation

/// Every change of an experiment: what an admin asks for over HTTP (or the dashboard) and what
/// the rollout leader decides. `Experiment.apply(_:to:context:)` turns one into an
/// `ExperimentChange`, purely; storage runs it as one unit of work (lock, load, apply, save,
/// audit, notify).
public enum ExperimentCommand: Sendable {
    /// A new experiment from its JSON definition.
    case create(JSON)
    /// A new definition; `ifMatch` must name the current revision.
    case replace(JSON, ifMatch: Int?)
    /// The current definition with a JSON merge patch (RFC 7396) applied, then as `replace`.
    case patch(JSON, ifMatch: Int?)
    /// Out of lists and assignment, its key kept.
    case archive(ifMatch: Int?)
    /// `start`, `pause`, `resume`, `stop` (with an optional winner), `rollback`.
    case lifecycle(LifecycleAction, winner: String?, reason: String?, ifMatch: Int?)
    /// Passes the rollout's next approval gate.
    case approveRollout
    /// The rollout leader's decision for one tick, taken on revision `decidedAt`.
    case decideRollout(RolloutDecision, readings: [GuardrailReading], decidedAt: Int)

    /// Whether applying it reads the other objects a definition refers to (cohorts, layers,
    /// metrics): storage reads them only then.
    public var validatesDefinition: Bool {
        switch self {
        case .create, .replace, .patch: true
        default: false
        }
    }
}

/// What the command applies against besides the experiment: the other objects a definition
/// may refer to, read under the configuration lock, and the time.
public struct CommandContext: Sendable {
    public var validation: ExperimentValidationContext
    public var now: Date

    public init(validation: ExperimentValidationContext = .init(knownCohorts: nil), now: Date = Date()) {
        self.validation = validation
        self.now = now
    }
}

/// What a change did to a rollout: the event of its history's new row (`RolloutHistoryEntry`).
public struct RolloutEvent: Sendable, Hashable {
    public var kind: RolloutEventKind
    public var reason: String?

    public init(_ kind: RolloutEventKind, reason: String? = nil) {
        self.kind = kind
        self.reason = reason
    }

    /// The event's name, as stored and shown.
    public var event: String { kind.rawValue }
}

/// What a command does: the experiment after it, and what storage records with it.
public struct ExperimentChange: Sendable {
    /// The experiment as it must be stored (revision and times already set).
    public var experiment: Experiment
    /// The experiment before, nil when created.
    public var before: Experiment?
    /// The revision's action and, prefixed `experiment.`, the audit's (`create`, `update`,
    /// `archive`, `start`, …, `rollout.approve`, `rollout.advanced`, …; a pause or rollback is
    /// `pause` or `rollback` whoever decides it, a person or the controller); nil when only the
    /// rollout's guardrail readings changed, which makes no revision and no notice.
    public var action: String?
    /// The rollout history's new row, if any.
    public var rolloutEvent: RolloutEvent?

    public init(experiment: Experiment, before: Experiment?, action: String?, rolloutEvent: RolloutEvent? = nil) {
        self.experiment = experiment
        self.before = before
        self.action = action
        self.rolloutEvent = rolloutEvent
    }
}
