/// A stored object this version of Aviary cannot read — an operator's SQL edit, or a row an
/// older version wrote before a rule was tightened. It never stops the others: it is reported
/// (`/readyz`, `/metrics`, the dashboard, the log) and repaired through the API
/// (docs/operations.md, "Unreadable stored objects").
public struct UnreadableObject: Sendable, Hashable, Comparable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable, Comparable {
        case experiment, cohort, metric, key
        public static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    public var kind: Kind
    public var key: String
    /// What the validator says of the stored document.
    public var problem: String

    public init(kind: Kind, key: String, problem: String) {
        self.kind = kind
        self.key = key
        self.problem = problem
    }

    public static func < (a: Self, b: Self) -> Bool { (a.kind, a.key, a.problem) < (b.kind, b.key, b.problem) }

    public var description: String { "\(kind.rawValue) \"\(key)\": \(problem)" }

    public var json: JSON { ["kind": .string(kind.rawValue), "key": .string(key), "problem": .string(problem)] }

    /// The error of reading it, and of every write but a repair (`PUT` of a whole valid document,
    /// `DELETE`): 409 `stored_object_unreadable` with the validator's message.
    public var refusal: AviaryError {
        .storedObjectUnreadable(
            "stored \(kind.rawValue) \"\(key)\" cannot be read (\(problem)); PUT a whole valid definition or DELETE it to repair it")
    }
}

/// A stored row as read: the object, or why it cannot be read.
public enum Stored<Object: Sendable>: Sendable {
    case readable(Object)
    case unreadable(UnreadableObject)

    public var object: Object? { if case .readable(let o) = self { o } else { nil } }
    public var unreadable: UnreadableObject? { if case .unreadable(let u) = self { u } else { nil } }
}

extension Array {
    /// The readable objects of stored rows, and the unreadable rows.
    public func partitioned<Object>() -> (objects: [Object], unreadable: [UnreadableObject]) where Element == Stored<Object> {
        var objects: [Object] = []
        var unreadable: [UnreadableObject] = []
        for row in self {
            switch row {
            case .readable(let o): objects.append(o)
            case .unreadable(let u): unreadable.append(u)
            }
        }
        return (objects, unreadable)
    }
}
