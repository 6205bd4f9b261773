import Foundation

/// A cohort or a metric definition: kept by key with a revision, created or replaced by a PUT,
/// deleted while nothing uses it. The rules of those writes live here; storage runs them as
/// one unit of work (`AviaryPostgres/ConfigObjectStore`).
public protocol ConfigObject: Sendable {
    /// `cohort` or `metric`: in audit actions, messages and error codes.
    static var kind: String { get }
    var key: String { get }
    var revision: Int { get set }
    var createdAt: Date { get set }
    var updatedAt: Date { get set }
    var json: JSON { get }
}

/// Whether a `PUT` made a new object or replaced one (201 or 200).
public enum PutOutcome: Sendable {
    case created, updated
}

/// What a write of a configuration object does.
public struct ConfigObjectChange<Object: ConfigObject>: Sendable {
    /// The object after the write; nil when deleted.
    public var object: Object?
    public var before: Object?

    public init(object: Object?, before: Object?) {
        self.object = object
        self.before = before
    }

    /// The audit action: `<kind>.create`, `.update` or `.delete`.
    public var action: String {
        "\(Object.kind)." + (object == nil ? "delete" : before == nil ? "create" : "update")
    }

    public var outcome: PutOutcome { before == nil ? .created : .updated }
}

extension ConfigObject {
    /// A PUT of `object`, already validated, over `current`: `ifMatch`, when given, must name
    /// the current revision (0 for none); the revision grows by one.
    public static func put(_ object: Self, over current: Self?, ifMatch: Int?, now: Date) throws -> ConfigObjectChange<Self> {
        if let ifMatch, ifMatch != (current?.revision ?? 0) { throw AviaryError.preconditionFailed(current: current?.revision ?? 0) }
        var stored = object
        stored.revision = (current?.revision ?? 0) + 1
        stored.createdAt = current?.createdAt ?? now
        stored.updatedAt = now
        return ConfigObjectChange(object: stored, before: current)
    }

    /// A DELETE of `current`, the object `key`; refused while something uses it.
    /// - Parameter users: what refers to it, by kind (`experiments`, `cohorts`), each sorted.
    public static func delete(_ current: Self?, key: String, usedBy users: [(kind: String, keys: [String])]) throws -> ConfigObjectChange<Self> {
        guard let current else { throw AviaryError.notFound("\(kind) \"\(key)\" does not exist") }
        try refuseDeleting(key, whileUsedBy: users)
        return ConfigObjectChange(object: nil, before: current)
    }

    /// The `409` of deleting `key` while something refers to it; also for a stored row that
    /// cannot be read, which a DELETE repairs.
    public static func refuseDeleting(_ key: String, whileUsedBy users: [(kind: String, keys: [String])]) throws {
        let using = users.filter { !$0.keys.isEmpty }
        guard using.isEmpty else {
            let named = using.map { "\($0.kind) " + $0.keys.map { "\"\($0)\"" }.joined(separator: ", ") }
            throw AviaryError.conflict(
                "\(kind) \"\(key)\" is still used by \(named.joined(separator: " and "))",
                issues: using.flatMap { user in user.keys.map { ValidationIssue(path: user.kind, message: $0) } })
        }
    }
}

extension Cohort: ConfigObject {
    public static let kind = "cohort"

    /// The cohort a PUT body describes, or the `invalid_cohort` error listing every problem.
    /// - Parameter references: for every other existing cohort, the cohorts it refers to.
    public static func validated(_ body: JSON, key: String, references: [String: Set<String>]) throws -> Cohort {
        switch CohortValidator.validate(body, key: key, references: references) {
        case .success(let d): return Cohort(key: key, name: d.name, description: d.description, condition: d.condition)
        case .failure(let f): throw AviaryError.invalid(code: "invalid_cohort", issues: f.issues)
        }
    }
}

extension Metric: ConfigObject {
    public static let kind = "metric"

    /// The metric a PUT body describes, or the `invalid_metric` error listing every problem.
    public static func validated(_ body: JSON, key: String) throws -> Metric {
        switch MetricValidator.validate(body, key: key) {
        case .success(let metric): return metric
        case .failure(let f): throw AviaryError.invalid(code: "invalid_metric", issues: f.issues)
        }
    }
}
