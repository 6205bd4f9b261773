import Foundation

/// An outcome event (docs/api.md, "Events"), validated.
public struct Event: Sendable, Hashable {
    public var id: UUID
    public var type: String
    public var userID: String?
    public var anonymousID: String?
    public var ts: Date
    public var value: Double
    public var model: String?
    public var appVersion: String?
    public var experiment: String?
    public var variant: String?
    /// Canonical JSON text of `props`, when given.
    public var props: String?

    public init(
        id: UUID, type: String, userID: String?, anonymousID: String?, ts: Date, value: Double = 1, model: String? = nil,
        appVersion: String? = nil, experiment: String? = nil, variant: String? = nil, props: String? = nil
    ) {
        self.id = id
        self.type = type
        self.userID = userID
        self.anonymousID = anonymousID
        self.ts = ts
        self.value = value
        self.model = model
        self.appVersion = appVersion
        self.experiment = experiment
        self.variant = variant
        self.props = props
    }
}
