import Foundation

/// The events of a rollout's history (docs/api.md, "Rollouts").
public enum RolloutEventKind: String, Sendable, Hashable, CaseIterable {
    case started, advanced
    case awaitingApproval = "awaiting_approval"
    case approved, paused, resumed, completed
    case rolledBack = "rolled_back"

    /// The lifecycle action the event is: a pause or a rollback, by hand, from the dashboard
    /// or by the controller, is one change with one audit action and one notice.
    public var lifecycleAction: LifecycleAction? {
        switch self {
        case .paused: return .pause
        case .rolledBack: return .rollback
        default: return nil
        }
    }

    /// Whether the event posts the rollout's notice (`RolloutNotice`).
    public var postsNotice: Bool { lifecycleAction != nil }
}

/// One row of a rollout's history (`rollout.history` of a report, the dashboard's timeline).
public struct RolloutHistoryEntry: Sendable, Hashable {
    public var at: Date
    public var event: RolloutEventKind
    /// The step after the event, and the rolled variant's percentage then.
    public var step: Int
    public var percent: Double
    public var reason: String?
    /// Nil for the controller's own decisions.
    public var actorKeyID: String?
    /// The guardrails as measured when the event happened.
    public var guardrails: [GuardrailReading]

    public init(
        at: Date, event: RolloutEventKind, step: Int, percent: Double, reason: String? = nil, actorKeyID: String? = nil,
        guardrails: [GuardrailReading] = []
    ) {
        self.at = at
        self.event = event
        self.step = step
        self.percent = percent
        self.reason = reason
        self.actorKeyID = actorKeyID
        self.guardrails = guardrails
    }

    /// The entry as the report shows it.
    public var json: JSON {
        [
            "at": .string(Timestamp.format(at)), "event": .string(event.rawValue), "step": .number(Double(step)), "percent": .number(percent),
            "reason": reason.map(JSON.string) ?? .null, "actor_key_id": actorKeyID.map(JSON.string) ?? .null,
            "guardrails": .array(guardrails.map(\.json)),
        ]
    }
}

extension GuardrailReading {
    /// A reading as stored (`rollout_state.guardrails`, `rollout_history.guardrails`); nil
    /// without a metric. A reading that does not say is taken as holding.
    public init?(json: JSON) {
        guard let metric = json["metric"]?.stringValue else { return nil }
        self.init(metric: metric, value: json["value"]?.numberValue, ok: json["ok"]?.boolValue ?? true)
    }
}

/// A report's rollout section (docs/api.md, "Rollouts"): the state and the history.
public struct ReportRollout: Sendable, Hashable {
    public var plan: RolloutPlan
    public var state: RolloutState?
    public var history: [RolloutHistoryEntry]

    public init(plan: RolloutPlan, state: RolloutState?, history: [RolloutHistoryEntry]) {
        self.plan = plan
        self.state = state
        self.history = history
    }

    public var json: JSON { ["state": state?.json(plan: plan) ?? .null, "history": .array(history.map(\.json))] }
}
