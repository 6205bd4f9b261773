import Foundation

/// One line of the audit log: who did what to which object, with the object before and after.
public struct AuditEntry: Sendable, Hashable {
    public var id: Int64
    public var at: Date
    public var actorKeyID: String?
    public var action: String
    public var targetType: String
    public var targetKey: String
    public var experiment: String?
    public var before: JSON?
    public var after: JSON?

    public init(
        id: Int64, at: Date, actorKeyID: String?, action: String, targetType: String, targetKey: String, experiment: String?,
        before: JSON?, after: JSON?
    ) {
        self.id = id
        self.at = at
        self.actorKeyID = actorKeyID
        self.action = action
        self.targetType = targetType
        self.targetKey = targetKey
        self.experiment = experiment
        self.before = before
        self.after = after
    }

    public var json: JSON {
        [
            "id": .number(Double(id)), "at": .string(Timestamp.format(at)), "actor_key_id": actorKeyID.map(JSON.string) ?? .null,
            "action": .string(action), "target_type": .string(targetType), "target_key": .string(targetKey),
            "experiment": experiment.map(JSON.string) ?? .null, "before": before ?? .null, "after": after ?? .null,
        ]
    }
}

/// One stored revision of an experiment.
public struct ExperimentRevision: Sendable, Hashable {
    public var revision: Int
    public var action: String
    public var experiment: JSON
    public var actorKeyID: String?
    public var at: Date

    public init(revision: Int, action: String, experiment: JSON, actorKeyID: String?, at: Date) {
        self.revision = revision
        self.action = action
        self.experiment = experiment
        self.actorKeyID = actorKeyID
        self.at = at
    }

    public var json: JSON {
        [
            "revision": .number(Double(revision)), "action": .string(action), "actor_key_id": actorKeyID.map(JSON.string) ?? .null,
            "at": .string(Timestamp.format(at)), "experiment": experiment,
        ]
    }
}
