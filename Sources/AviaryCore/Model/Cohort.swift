import Foundation

/// A saved, named condition that rules refer to by key.
public struct Cohort: Sendable, Hashable {
    public var key: String
    public var name: String
    public var description: String
    public var condition: Condition
    public var revision: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        key: String, name: String? = nil, description: String = "", condition: Condition, revision: Int = 1,
        createdAt: Date = Date(), updatedAt: Date = Date()
    ) {
        self.key = key
        self.name = name ?? key
        self.description = description
        self.condition = condition
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}
