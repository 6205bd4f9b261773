/// The pattern's syntax tree and its parser (`BoundedRegex`).
extension BoundedRegex {
    indirect enum Node {
        case empty
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarSet)
        case lineStart, lineEnd
        case concat([Node])
        case alternation([Node])
        case repetition(Node, min: Int, max: Int?)
    }

    struct Parser {
        let scalars: [Unicode.Scalar]
        var i = 0
        var depth = 0

        init(scalars: [Unicode.Scalar]) { self.scalars = scalars }

        mutating func parse() throws(SyntaxError) -> Node {
            let node = try alternation()
            if i < scalars.count { throw SyntaxError(description: "unbalanced ')' at position \(i)") }
            return node
        }

        var peek: Unicode.Scalar? { i < scalars.count ? scalars[i] : nil }

        mutating func alternation() throws(SyntaxError) -> Node {
            var branches = [try concatenation()]
            while peek == "|" {
                i += 1
                branches.append(try concatenation())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func concatenation() throws(SyntaxError) -> Node {
            var items: [Node] = []
            while let c = peek, c != "|", c != ")" {
                items.append(try quantified())
            }
            return items.isEmpty ? .empty : (items.count == 1 ? items[0] : .concat(items))
        }

        mutating func quantified() throws(SyntaxError) -> Node {
            let node = try atom()
            // One quantifier per atom: a second one (`a**`) is an error, as in PCRE and JavaScript.
            if let c = peek {
                var range: (Int, Int?)
                switch c {
                case "*": range = (0, nil); i += 1
                case "+": range = (1, nil); i += 1
                case "?": range = (0, 1); i += 1
                case "{":
                    guard let counted = try countedRepetition() else { return node }
                    range = counted
                default: return node
                }
                if case .lineStart = node { throw SyntaxError(description: "nothing to repeat at position \(i - 1)") }
                if case .lineEnd = node { throw SyntaxError(description: "nothing to repeat at position \(i - 1)") }
                if peek == "?" { i += 1 }  // lazy: same language, same answer for "does it match"
                if peek == "+" { throw SyntaxError(description: "possessive quantifiers are not supported") }
                return .repetition(node, min: range.0, max: range.1)
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; a `{` that does not start one is a literal.
        mutating func countedRepetition() throws(SyntaxError) -> (Int, Int?)? {
            let start = i
            i += 1
            func number(_ p: inout Parser) -> Int? {
                var digits = ""
                while let c = p.peek, c.properties.numericType == .decimal, c.isASCII {
                    digits.unicodeScalars.append(c)
                    p.i += 1
                }
                return digits.isEmpty ? nil : Int(digits.prefix(6))
            }
            guard let low = number(&self) else {
                i = start
                return nil
            }
            var high: Int? = low
            if peek == "," {
                i += 1
                high = number(&self)
            }
            guard peek == "}" else {
                i = start
                return nil
            }
            i += 1
            if low > BoundedRegex.maxRepeat || (high ?? 0) > BoundedRegex.maxRepeat {
                throw SyntaxError(description: "repetition counts are at most \(BoundedRegex.maxRepeat)")
            }
            if let high, high < low { throw SyntaxError(description: "{\(low),\(high)} has its bounds the wrong way round") }
            return (low, high)
        }

        mutating func atom() throws(SyntaxError) -> Node {
            guard let c = peek else { throw SyntaxError(description: "unexpected end of pattern") }
            i += 1
            switch c {
            case ".": return .any
            case "^": return .lineStart
            case "$": return .lineEnd
            case "*", "+", "?": throw SyntaxError(description: "nothing to repeat at position \(i - 1)")
            case "[": return .set(try characterClass())
            case "\\": return try escape(inClass: false).node
            case "(":
                if peek == "?" {
                    i += 1
                    switch peek {
                    case ":": i += 1
                    case "<" where i + 1 < scalars.count && scalars[i + 1] != "=" && scalars[i + 1] != "!":
                        try skipGroupName(closing: ">")
                    case "P" where i + 1 < scalars.count && scalars[i + 1] == "<":
                        i += 1
                        try skipGroupName(closing: ">")
                    case "=", "!", "<": throw SyntaxError(description: "lookaround is not supported")
                    default: throw SyntaxError(description: "inline flags and other (? groups are not supported")
                    }
                }
                depth += 1
                guard depth <= 32 else { throw SyntaxError(description: "groups are nested too deeply") }
                let inner = try alternation()
                depth -= 1
                guard peek == ")" else { throw SyntaxError(description: "missing ')'") }
                i += 1
                return inner
            default:
                return .scalar(c)
            }
        }

        mutating func skipGroupName(closing: Unicode.Scalar) throws(SyntaxError) {
            i += 1
            while let c = peek, c != closing {
                guard c.properties.isAlphabetic || c == "_" || (c.isASCII && c.properties.numericType == .decimal) else {
                    throw SyntaxError(description: "bad group name")
                }
                i += 1
            }
            guard peek == closing else { throw SyntaxError(description: "unterminated group name") }
            i += 1
        }

        enum Escaped {
            case scalar(Unicode.Scalar)
            case set(ScalarSet)

            var node: Node {
                switch self {
                case .scalar(let s): .scalar(s)
                case .set(let s): .set(s)
                }
            }
        }

        mutating func escape(inClass: Bool) throws(SyntaxError) -> Escaped {
            guard let c = peek else { throw SyntaxError(description: "the pattern ends with a lone backslash") }
            i += 1
            switch c {
            case "d": return .set(.digit)
            case "D": return .set(ScalarSet.digit.inverted)
            case "w": return .set(.word)
            case "W": return .set(ScalarSet.word.inverted)
            case "s": return .set(.space)
            case "S": return .set(ScalarSet.space.inverted)
            case "n": return .scalar("\n")
            case "t": return .scalar("\t")
            case "r": return .scalar("\r")
            case "f": return .scalar("\u{0C}")
            case "v": return .scalar("\u{0B}")
            case "0": return .scalar("\0")
            default:
                if c.isASCII, c.properties.isAlphabetic || c.properties.numericType == .decimal {
                    throw SyntaxError(description: "\\\(c) is not supported (backreferences, \\b and similar escapes are not)")
                }
                return .scalar(c)
            }
        }

        mutating func characterClass() throws(SyntaxError) -> ScalarSet {
            var set = ScalarSet()
            if peek == "^" {
                set.negated = true
                i += 1
            }
            var first = true
            while true {
                guard let c = peek else { throw SyntaxError(description: "missing ']'") }
                if c == "]", !first {
                    i += 1
                    return set
                }
                first = false
                i += 1
                var low: Unicode.Scalar
                if c == "\\" {
                    switch try escape(inClass: true) {
                    case .scalar(let s): low = s
                    case .set(let s):
                        if s.negated {
                            throw SyntaxError(description: "negated escapes such as \\D inside [...] are not supported")
                        }
                        set.ranges.append(contentsOf: s.ranges)
                        continue
                    }
                } else if c == "[", peek == ":" {
                    throw SyntaxError(description: "POSIX classes such as [:alpha:] are not supported")
                } else {
                    low = c
                }
                if peek == "-", i + 1 < scalars.count, scalars[i + 1] != "]" {
                    i += 1
                    guard var high = peek else { throw SyntaxError(description: "missing ']'") }
                    i += 1
                    if high == "\\" {
                        guard case .scalar(let s) = try escape(inClass: true) else {
                            throw SyntaxError(description: "a class escape cannot end a range")
                        }
                        high = s
                    }
                    guard low.value <= high.value else { throw SyntaxError(description: "range \(low)-\(high) is out of order") }
                    set.ranges.append(low.value...high.value)
                } else {
                    set.ranges.append(low.value...low.value)
                }
            }
        }
    }
}
