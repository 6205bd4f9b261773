import Foundation

extension Experiment {
    /// Applies `command` to `current`, the stored experiment `key` (nil when there is none).
    /// Pure: every rule of a write — validation, `If-Match`, legal transitions, what a rollout
    /// does to the weights — is decided here. Throws the `AviaryError` an illegal command is;
    /// answers nil for a rollout decision taken on a revision that has changed since (the next
    /// tick decides again).
    public static func apply(_ command: ExperimentCommand, key: String, to current: Experiment?, context: CommandContext) throws -> ExperimentChange? {
        let now = context.now
        switch command {
        case .create(let body):
            let definition = try validated(ExperimentValidator.validate(body, context: context.validation))
            if let current {
                throw AviaryError.conflict(
                    current.isArchived
                        ? "experiment \"\(definition.key)\" exists (archived); keys are never reused"
                        : "experiment \"\(definition.key)\" already exists")
            }
            let experiment = Experiment(definition: definition, status: .draft, revision: 1, createdAt: now, updatedAt: now)
            return ExperimentChange(experiment: experiment, before: nil, action: "create")

        case .replace(let body, let ifMatch), .patch(let body, let ifMatch):
            let isPatch: Bool
            if case .patch = command { isPatch = true } else { isPatch = false }
            guard let ifMatch else {
                let now = current.map { "; the current one is \"\($0.revision)\" (the ETag of GET /v1/experiments/\(key))" } ?? ""
                throw AviaryError.preconditionRequired("\(isPatch ? "PATCH" : "PUT") needs If-Match: \"<revision>\" naming the revision you read\(now)")
            }
            let before = try live(current, key: key, ifMatch: ifMatch)
            // A patch is merged into the stored document (its server-owned fields are ignored
            // on the way back in) and validated as the whole document would be.
            let body = isPatch ? before.json.applying(mergePatch: body) : body
            let definition = try validated(ExperimentValidator.validate(body, expectedKey: before.key, context: context.validation))
            var experiment = before
            experiment.replaceDefinition(with: definition)
            if let winner = experiment.winner, definition.variant(winner) == nil {
                throw AviaryError.invalid(
                    code: "invalid_experiment",
                    issues: [ValidationIssue(path: "variants", message: "winner \"\(winner)\" of this stopped experiment must stay a variant")])
            }
            return experiment.revised(from: before, action: "update", now: now)

        case .archive(let ifMatch):
            let before = try live(current, key: key, ifMatch: ifMatch)
            var experiment = before
            experiment.archivedAt = now
            return experiment.revised(from: before, action: "archive", now: now)

        case .lifecycle(let action, let winner, let reason, let ifMatch):
            let before = try live(current, key: key, ifMatch: ifMatch)
            guard let target = action.target(from: before.status) else {
                let allowed = action.allowedFrom.map(\.rawValue).joined(separator: " or ")
                throw AviaryError.illegalTransition(
                    "cannot \(action.rawValue) experiment \"\(before.key)\": it is \(before.status.rawValue), and \(action.rawValue) needs \(allowed)")
            }
            if let winner {
                guard action == .stop else {
                    throw AviaryError.invalid(code: "invalid_request", issues: [ValidationIssue(path: "winner", message: "only stop takes a winner")])
                }
                guard before.definition.variant(winner) != nil else {
                    throw AviaryError.invalid(
                        code: "invalid_request", issues: [ValidationIssue(path: "winner", message: "\"\(winner)\" is not one of the variants")])
                }
            }
            var experiment = before
            experiment.status = target
            if action == .stop { experiment.winner = winner }
            let event = experiment.applyToRollout(action, reason: reason, now: now)
            return experiment.revised(from: before, action: action.rawValue, event: event, now: now)

        case .approveRollout:
            guard let before = current, !before.isArchived else { throw AviaryError.notFound("experiment \"\(key)\" does not exist") }
            guard let plan = before.definition.rollout, var state = before.rolloutState, before.status == .running,
                state.phase == .running || state.phase == .awaitingApproval
            else {
                throw AviaryError.illegalTransition("experiment \"\(before.key)\" has no running rollout to approve")
            }
            var experiment = before
            state.approved = true
            experiment.rolloutState = state
            var event = RolloutEvent(.approved)
            if state.phase == .awaitingApproval {
                experiment.apply(state.step + 1 < plan.steps.count ? .advance(to: state.step + 1) : .complete, now: now)
                event.reason = "step \(experiment.rolloutState!.step) entered on approval"
            }
            return experiment.revised(from: before, action: "rollout.approve", event: event, now: now)

        case .decideRollout(let decision, let readings, let revision):
            guard let before = current, before.revision == revision, !before.isArchived, before.status == .running,
                before.rolloutState != nil
            else { return nil }
            var experiment = before
            experiment.rolloutState!.guardrails = readings
            guard let event = experiment.apply(decision, now: now) else {
                return ExperimentChange(experiment: experiment, before: before, action: nil)
            }
            // A pause or rollback is the lifecycle action it would be by hand, audited alike.
            return experiment.revised(from: before, action: event.kind.lifecycleAction?.rawValue ?? "rollout.\(event.event)", event: event, now: now)
        }
    }

    /// The experiment a write may change: it exists, is not archived, and `If-Match` (when
    /// given) names its revision.
    static func live(_ current: Experiment?, key: String, ifMatch: Int?) throws -> Experiment {
        guard let current else { throw AviaryError.notFound("experiment \"\(key)\" does not exist") }
        if current.isArchived { throw AviaryError.conflict("experiment \"\(current.key)\" is archived") }
        if let ifMatch, ifMatch != current.revision { throw AviaryError.preconditionFailed(current: current.revision) }
        return current
    }

    static func validated(_ result: Result<ExperimentDefinition, ValidationFailure>) throws -> ExperimentDefinition {
        switch result {
        case .success(let definition): return definition
        case .failure(let failure): throw AviaryError.invalid(code: "invalid_experiment", issues: failure.issues)
        }
    }

    /// A new revision of `before`.
    func revised(from before: Experiment, action: String, event: RolloutEvent? = nil, now: Date) -> ExperimentChange {
        var experiment = self
        experiment.revision = before.revision + 1
        experiment.updatedAt = now
        return ExperimentChange(experiment: experiment, before: before, action: action, rolloutEvent: event)
    }
}

extension Experiment {
    /// What `apply` works on when the stored experiment `key` cannot be read: only a repair may
    /// write it — a `PUT` of a whole valid definition (`replace`) or an archive — and it applies
    /// over a stand-in holding the stored row's status, revision and times, so that `If-Match`
    /// and every other rule of those commands still hold. Any other command is refused with the
    /// validator's message.
    public static func repairTarget(
        for command: ExperimentCommand, unreadable: UnreadableObject, standIn: Experiment
    ) throws -> Experiment {
        switch command {
        case .replace, .archive: return standIn
        case .create: throw AviaryError.conflict("experiment \"\(unreadable.key)\" already exists")
        default: throw unreadable.refusal
        }
    }
}
