/// Who is asking and what is known about them (docs/api.md, "Assignment"): the unit ids plus attributes such as
/// `country`, `region`, `app_version`, `email`, `cookie.<name>`, `user_agent` and custom ones.
public struct AssignmentContext: Sendable, Hashable {
    public var userID: String?
    public var anonymousID: String?
    public var attributes: [String: Scalar]

    public init(userID: String? = nil, anonymousID: String? = nil, attributes: [String: Scalar] = [:]) {
        self.userID = userID
        self.anonymousID = anonymousID
        self.attributes = attributes
    }

    @inlinable
    public func unit(_ kind: UnitKind) -> String? {
        switch kind {
        case .userID: userID
        case .anonymousID: anonymousID
        }
    }

    /// An attribute by name; `user_id` and `anonymous_id` are attributes too.
    @inlinable
    public func attribute(_ name: String) -> Scalar? {
        if let value = attributes[name] { return value }
        switch name {
        case "user_id": return userID.map(Scalar.string)
        case "anonymous_id": return anonymousID.map(Scalar.string)
        default: return nil
        }
    }
}

extension Scalar {
    /// The value as text, for string operators and patterns.
    public var text: String {
        switch self {
        case .string(let s): s
        case .bool(let b): b ? "true" : "false"
        case .number(let n): n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        }
    }

    /// The value as a number: numbers as they are, numeric strings parsed, nothing else.
    public var number: Double? {
        switch self {
        case .number(let n): n
        case .string(let s): Double(s.trimmingCharacters(in: .whitespaces))
        case .bool: nil
        }
    }

    /// Equality that lets a context's text (headers are text) meet a JSON operand of another type:
    /// `"42"` equals `42`, `"true"` equals `true`.
    public func looselyEquals(_ operand: Scalar) -> Bool {
        switch (self, operand) {
        case (.string(let a), .string(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.string, .number(let b)): number == b
        case (.number(let a), .string): operand.number == a
        case (.string(let a), .bool(let b)): a.lowercased() == (b ? "true" : "false")
        case (.bool(let a), .string(let b)): b.lowercased() == (a ? "true" : "false")
        default: false
        }
    }
}

import Foundation

extension Scalar: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}
