/// One problem found in a request body, located by a JSON path such as `rules[1].serve.split`.
public struct ValidationIssue: Sendable, Hashable, Codable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path.isEmpty ? "$" : path): \(message)" }
}

/// A JSON path under construction; `""` is the document root.
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public private(set) var description: String

    public static let root = JSONPath(description: "")

    public func key(_ name: String) -> JSONPath {
        JSONPath(description: description.isEmpty ? name : "\(description).\(name)")
    }

    public func index(_ i: Int) -> JSONPath {
        JSONPath(description: "\(description)[\(i)]")
    }

    public subscript(name: String) -> JSONPath { key(name) }
    public subscript(i: Int) -> JSONPath { index(i) }
}

/// Collects issues while a validator walks a document, so every problem is reported at once.
public struct IssueCollector: Sendable {
    public private(set) var issues: [ValidationIssue] = []

    public init() {}

    public var isEmpty: Bool { issues.isEmpty }

    public mutating func add(_ path: JSONPath, _ message: String) {
        issues.append(ValidationIssue(path: path.description, message: message))
    }

    public mutating func append(contentsOf other: [ValidationIssue]) {
        issues.append(contentsOf: other)
    }

    // MARK: typed field readers: each reports a type mismatch and returns nil

    public mutating func string(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> String? {
        guard let value, !value.isNull else {
            if required { add(path, "is required") }
            return nil
        }
        guard case .string(let s) = value else {
            add(path, "must be a string, not \(value.typeName)")
            return nil
        }
        return s
    }

    public mutating func number(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> Double? {
        guard let value, !value.isNull else {
            if required { add(path, "is required") }
            return nil
        }
        guard case .number(let n) = value else {
            add(path, "must be a number, not \(value.typeName)")
            return nil
        }
        return n
    }

    public mutating func bool(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> Bool? {
        guard let value, !value.isNull else {
            if required { add(path, "is required") }
            return nil
        }
        guard case .bool(let b) = value else {
            add(path, "must be a boolean, not \(value.typeName)")
            return nil
        }
        return b
    }

    public mutating func array(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> [JSON]? {
        guard let value, !value.isNull else {
            if required { add(path, "is required") }
            return nil
        }
        guard case .array(let a) = value else {
            add(path, "must be an array, not \(value.typeName)")
            return nil
        }
        return a
    }

    public mutating func object(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> [String: JSON]? {
        guard let value, !value.isNull else {
            if required { add(path, "is required") }
            return nil
        }
        guard case .object(let o) = value else {
            add(path, "must be an object, not \(value.typeName)")
            return nil
        }
        return o
    }

    /// A key of the grammar `^[a-z0-9][a-z0-9_-]{0,62}$`.
    public mutating func key(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> String? {
        guard let s = string(value, path, required: required) else { return nil }
        guard Key.isValid(s) else {
            add(path, "\"\(s.prefix(80))\" is not a valid key (lower-case letters, digits, '_' and '-', 1 to 63 characters, starting with a letter or digit)")
            return nil
        }
        return s
    }

    /// A percentage in [0, 100] with at most two decimals, returned in hundredths (0 ... 10_000).
    public mutating func percent(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> Int? {
        guard let n = number(value, path, required: required) else { return nil }
        guard n >= 0, n <= 100 else {
            add(path, "must be between 0 and 100, not \(Percent.format(n))")
            return nil
        }
        guard let hundredths = Percent.hundredths(n) else {
            add(path, "must have at most two decimals, not \(n)")
            return nil
        }
        return hundredths
    }

    /// A string naming one case of `E`, such as a metric's `kind`.
    public mutating func choice<E: RawRepresentable & CaseIterable>(_ value: JSON?, _ path: JSONPath, required: Bool = false) -> E?
    where E.RawValue == String {
        guard let raw = string(value, path, required: required) else { return nil }
        return choice(raw, path)
    }

    /// `raw` as a case of `E`, or an issue listing the cases.
    public mutating func choice<E: RawRepresentable & CaseIterable>(_ raw: String, _ path: JSONPath) -> E? where E.RawValue == String {
        if let value = E(rawValue: raw) { return value }
        add(path, "must be one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(raw.prefix(40))\"")
        return nil
    }

    /// Reports fields of an object that are neither known nor read-only.
    public mutating func rejectUnknownFields(_ object: [String: JSON], _ path: JSONPath, known: Set<String>) {
        for name in object.keys.sorted() where !known.contains(name) {
            add(path[name], "is not a known field")
        }
    }
}

/// Percentages are stored as whole hundredths so sums are exact.
public enum Percent {
    public static func hundredths(_ value: Double) -> Int? {
        let scaled = (value * 100).rounded()
        guard abs(scaled - value * 100) < 1e-6 else { return nil }
        return Int(scaled)
    }

    public static func toDouble(_ hundredths: Int) -> Double { Double(hundredths) / 100 }

    public static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    public static func format(hundredths: Int) -> String { format(toDouble(hundredths)) }
}
