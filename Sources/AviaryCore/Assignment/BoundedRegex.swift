/// A regular expression engine whose running time is bounded: patterns compile to a Thompson NFA
/// run as a Pike VM (no backtracking), so a hostile pattern cannot take exponential time, and a
/// step budget caps the linear worst case. It supports the common syntax — literals, `.`, classes
/// `[a-z]` `[^…]`, `\d \w \s` and their negations, `^`, `$`, groups `(…)` `(?:…)` `(?<name>…)`,
/// `|`, and `* + ? {n} {n,} {n,m}` (lazy forms match the same) — and rejects backreferences,
/// lookaround and inline flags at write time.
public struct BoundedRegex: Sendable {
    public static let maxProgramSize = 5_000
    public static let maxRepeat = 1_000
    /// Inputs longer than this never match.
    public static let maxInputLength = 8_192
    /// NFA steps one match may take before it gives up (and does not match).
    public static let maxSteps = 2_000_000

    public struct SyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarSet)
        case split(Int, Int)
        case jump(Int)
        case lineStart
        case lineEnd
        case match
    }

    let program: [Instruction]
    public let pattern: String

    public init(_ pattern: String) throws(SyntaxError) {
        self.pattern = pattern
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        let node = try parser.parse()
        var compiler = Compiler()
        try compiler.emit(node)
        compiler.program.append(.match)
        guard compiler.program.count <= Self.maxProgramSize else {
            throw SyntaxError(description: "the pattern is too large once its repetitions are expanded")
        }
        program = compiler.program
    }

    /// True when the pattern matches anywhere in `input` (use `^…$` to match all of it).
    public func matches(_ input: String) -> Bool {
        let scalars = Array(input.unicodeScalars)
        guard scalars.count <= Self.maxInputLength else { return false }
        let n = program.count
        var current = ThreadList(capacity: n)
        var next = ThreadList(capacity: n)
        var steps = 0
        var stack: [Int] = []
        stack.reserveCapacity(16)

        // Adds `pc` and everything reachable from it without consuming input.
        func add(_ pc: Int, at position: Int, to list: inout ThreadList) -> Bool {
            stack.append(pc)
            while let p = stack.popLast() {
                guard list.insert(p) else { continue }
                steps += 1
                switch program[p] {
                case .jump(let target): stack.append(target)
                case .split(let a, let b):
                    stack.append(b)
                    stack.append(a)
                case .lineStart: if position == 0 { stack.append(p + 1) }
                case .lineEnd: if position == scalars.count { stack.append(p + 1) }
                case .match: return true
                default: break
                }
            }
            return false
        }

        for position in 0...scalars.count {
            if add(0, at: position, to: &current) { return true }
            if position == scalars.count { break }
            let c = scalars[position]
            next.clear()
            for pc in current.members {
                steps += 1
                let advances: Bool
                switch program[pc] {
                case .scalar(let s): advances = s == c
                case .any: advances = c != "\n"
                case .set(let set): advances = set.contains(c)
                default: advances = false
                }
                if advances, add(pc + 1, at: position + 1, to: &next) { return true }
            }
            if steps > Self.maxSteps { return false }
            swap(&current, &next)
        }
        return false
    }
}

/// A sparse set of program counters, cleared in O(1).
struct ThreadList {
    private(set) var members: [Int] = []
    private var mark: [UInt32]
    private var generation: UInt32 = 1

    init(capacity: Int) {
        mark = Array(repeating: 0, count: capacity)
        members.reserveCapacity(capacity)
    }

    mutating func insert(_ pc: Int) -> Bool {
        if mark[pc] == generation { return false }
        mark[pc] = generation
        members.append(pc)
        return true
    }

    mutating func clear() {
        members.removeAll(keepingCapacity: true)
        generation &+= 1
        if generation == 0 {
            for i in mark.indices { mark[i] = 0 }
            generation = 1
        }
    }
}

/// A character class: ranges, optionally negated.
struct ScalarSet: Sendable {
    var ranges: [ClosedRange<UInt32>] = []
    var negated = false

    func contains(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        var found = false
        for r in ranges where r.contains(v) {
            found = true
            break
        }
        return found != negated
    }

    static let digit = ScalarSet(ranges: [48...57])
    static let word = ScalarSet(ranges: [48...57, 65...90, 95...95, 97...122])
    static let space = ScalarSet(ranges: [9...13, 32...32])

    var inverted: ScalarSet { ScalarSet(ranges: ranges, negated: !negated) }
}
