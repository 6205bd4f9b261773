import Foundation

/// The notice a rollout's rollback or pause posts to its `notify_url` (docs/api.md, "The
/// notice"). It is decided with the change and written in the change's transaction (the
/// outbox), so a server that dies after the change still has it delivered, by another, with
/// the same delivery id.
public struct RolloutNotice: Sendable, Hashable {
    /// One id for every attempt at this notice (`X-Aviary-Delivery`).
    public var delivery: String
    public var experiment: String
    public var event: String
    public var url: String
    public var body: JSON

    /// The notice of `change`: a rollback or a pause (by hand, from the dashboard or by the
    /// controller) of an experiment whose rollout names a `notify_url`; nil for any other change.
    public init?(_ change: ExperimentChange, delivery: UUID = UUID()) {
        let experiment = change.experiment
        guard let event = change.rolloutEvent, event.kind.postsNotice, let plan = experiment.definition.rollout,
            let url = plan.notifyURL
        else { return nil }
        var payload: [String: JSON] = [
            "experiment": .string(experiment.key),
            "event": .string(event.event),
            "reason": event.reason.map(JSON.string) ?? .null,
            "variant": .string(plan.variant),
            "status": .string(experiment.status.rawValue),
            "at": .string(Timestamp.format(experiment.updatedAt)),
        ]
        if let state = experiment.rolloutState { payload["rollout_state"] = state.json(plan: plan) }
        self.delivery = delivery.uuidString.lowercased()
        self.experiment = experiment.key
        self.event = event.event
        self.url = url
        self.body = .object(payload)
    }
}
