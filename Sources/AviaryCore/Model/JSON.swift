import Foundation

/// A JSON value. Requests are decoded into this first so that validation can report
/// every problem with its path instead of stopping at the first `Codable` failure.
public enum JSON: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var numberValue: Double? { if case .number(let n) = self { return n } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: [String: JSON]? { if case .object(let o) = self { return o } else { return nil } }

    /// The JSON type name used in validation messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }
}

extension JSON: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSON].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    /// An integral value below 10¹⁵ as the integer it is: such numbers print without a fraction
    /// (`4`, not `4.0`) so revisions, weights and counts read naturally — in JSON and in CSV.
    public static func integral(_ n: Double) -> Int64? {
        n.rounded() == n && abs(n) < 1e15 ? Int64(n) : nil
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n):
            if let integer = Self.integral(n) { try container.encode(integer) } else { try container.encode(n) }
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension JSON {
    /// Limits applied when parsing untrusted bytes.
    public static let maxNestingDepth = 64

    public enum ParseError: Error, Sendable, Equatable {
        case invalid(String)
        case tooDeep
        /// Well-formed JSON with a string (or a member name) that PostgreSQL cannot store
        /// (`StorableText`), at `path`.
        case unstorable(path: String)

        /// What went wrong, in words for an error message (no Swift syntax).
        public var reason: String {
            switch self {
            case .invalid(let reason): reason
            case .tooDeep: "nested deeper than \(JSON.maxNestingDepth) levels"
            case .unstorable(let path): "\(path.isEmpty ? "$" : path) \(StorableText.nulProblem)"
            }
        }

        /// The problem as a validation issue of the document at `document` (the root, or a line
        /// of NDJSON): at its path for unstorable text, at the document otherwise.
        public func issue(in document: JSONPath = .root, invalid: String = "the body is not valid JSON") -> ValidationIssue {
            switch self {
            case .unstorable(let path):
                let joined = document.description.isEmpty || path.isEmpty || path.hasPrefix("[") ? document.description + path : "\(document).\(path)"
                return ValidationIssue(path: joined, message: StorableText.nulProblem)
            default:
                return ValidationIssue(path: document.description, message: "\(invalid): \(reason)")
            }
        }
    }

    /// A step of the path to an unstorable string, collected as the error unwinds.
    private enum Step { case key(String), index(Int) }
    private struct Unstorable: Error { var steps: [Step] }

    /// Parses UTF-8 JSON, refusing documents nested deeper than `maxNestingDepth` and strings or
    /// member names PostgreSQL cannot store (`ParseError.unstorable`, with the path).
    ///
    /// Foundation's `JSONSerialization` reads the bytes (about 4× faster than decoding this enum
    /// through `Codable`, which event ingestion spent most of its time in), and the result is
    /// converted here: its booleans are the `NSNumber` subclass of `NSNumber(value: true)`, and
    /// numbers that do not fit a finite double are refused as `JSONDecoder` refused them.
    public static func parse(_ bytes: some Collection<UInt8>) throws(ParseError) -> JSON {
        let data = Data(bytes)
        if Self.nestingDepth(of: data) > maxNestingDepth { throw .tooDeep }
        let value: Any
        do {
            value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            let message = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw .invalid(message ?? error.localizedDescription)
        }
        do {
            return try JSON(foundation: value)
        } catch let error as Unstorable {
            var path = JSONPath.root
            for step in error.steps.reversed() {
                switch step {
                case .key(let name): path = path[name]
                case .index(let i): path = path[i]
                }
            }
            throw .unstorable(path: path.description)
        } catch let error as ParseError {
            throw error
        } catch {
            throw .invalid("\(error)")
        }
    }

    private static let booleanClass: AnyClass = type(of: NSNumber(value: true))

    /// Swift's containers and strings are tried first: asking a Swift dictionary whether it is an
    /// `NSNull` or an `NSNumber` bridges it, with its contents, to Objective-C.
    /// An unstorable string throws `Unstorable`, whose steps each container adds to on the way
    /// out: the path costs nothing unless there is one.
    private init(foundation value: Any) throws {
        if let object = value as? [String: Any] {
            var fields: [String: JSON] = [:]
            fields.reserveCapacity(object.count)
            for (key, field) in object {
                guard StorableText.isStorable(key) else { throw Unstorable(steps: [.key(key.replacingOccurrences(of: "\u{0}", with: "\\u0000"))]) }
                do {
                    fields[key] = try JSON(foundation: field)
                } catch var error as Unstorable {
                    error.steps.append(.key(key))
                    throw error
                }
            }
            self = .object(fields)
        } else if let array = value as? [Any] {
            var elements: [JSON] = []
            elements.reserveCapacity(array.count)
            for (index, element) in array.enumerated() {
                do {
                    elements.append(try JSON(foundation: element))
                } catch var error as Unstorable {
                    error.steps.append(.index(index))
                    throw error
                }
            }
            self = .array(elements)
        } else if let string = value as? String {
            guard StorableText.isStorable(string) else { throw Unstorable(steps: []) }
            self = .string(string)
        } else if let number = value as? NSNumber {
            if type(of: number) == JSON.booleanClass {
                self = .bool(number.boolValue)
            } else {
                let double = number.doubleValue
                guard double.isFinite else { throw ParseError.invalid("Number \(number) is not representable") }
                self = .number(double)
            }
        } else if value is NSNull {
            self = .null
        } else {
            throw ParseError.invalid("unexpected value \(type(of: value))")
        }
    }

    /// Bracket depth outside strings; a cheap pre-check so hostile nesting never reaches the decoder.
    static func nestingDepth(of data: Data) -> Int {
        data.withUnsafeBytes { bytes in
            var depth = 0, maxDepth = 0, inString = false, escaped = false
            for byte in bytes {
                if inString {
                    if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                    continue
                }
                switch byte {
                case UInt8(ascii: "\""): inString = true
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    depth += 1
                    maxDepth = max(maxDepth, depth)
                case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
                default: break
                }
            }
            return maxDepth
        }
    }

    /// Compact JSON with sorted keys: stable bytes for storage, ETags and comparisons.
    public func canonicalData() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data("null".utf8)
    }

    public func canonicalString() -> String { String(decoding: canonicalData(), as: UTF8.self) }
}
