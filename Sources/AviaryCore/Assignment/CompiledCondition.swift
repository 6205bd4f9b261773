/// Every condition of a snapshot — cohorts' and rules' — compiled into one flat program.
/// Nodes hold only integers, children sit in one contiguous list, attribute names are slots in
/// a table and cohorts are node indexes, so evaluating costs no reference counting per node and
/// one dictionary lookup per attribute per request, however many experiments read it.
public struct ConditionProgram: Sendable {
    enum Node: Sendable {
        case attribute(slot: Int, op: Int)
        case cohort(Int)
        case all(start: Int, count: Int)
        case any(start: Int, count: Int)
        case not(Int)
        case constant(Bool)
    }

    var nodes: [Node] = []
    var children: [Int] = []
    var operators: [AttributeOperator] = []
    /// Compiled `matches` patterns, by operator index (nil for other operators).
    var patterns: [BoundedRegex?] = []
    private(set) var attributeNames: [String] = []
    private var slots: [String: Int] = [:]
    /// Root node of each cohort, by cohort index.
    private(set) var cohortRoots: [Int] = []
    private var cohortIndex: [String: Int] = [:]
    /// Rule conditions that are written the same share one root and one answer per request:
    /// experiments of one product tend to target the same staff, regions and versions.
    private(set) var ruleRoots: [Int] = []
    private var ruleIndex: [Condition: Int] = [:]

    init() {}

    /// Compiles the cohorts first so that rules can refer to them by index.
    init(cohorts: [Cohort]) {
        let sorted = cohorts.sorted { $0.key < $1.key }
        for (i, cohort) in sorted.enumerated() { cohortIndex[cohort.key] = i }
        cohortRoots = Array(repeating: 0, count: sorted.count)
        for (i, cohort) in sorted.enumerated() { cohortRoots[i] = compile(cohort.condition) }
    }

    /// Adds a rule's condition, or finds the same one added before, and returns its rule index.
    mutating func compileRule(_ condition: Condition) -> Int {
        if let existing = ruleIndex[condition] { return existing }
        ruleRoots.append(compile(condition))
        ruleIndex[condition] = ruleRoots.count - 1
        return ruleRoots.count - 1
    }

    /// Adds `condition` and returns its root node.
    mutating func compile(_ condition: Condition) -> Int {
        let node: Node
        switch condition {
        case .attribute(let name, let op):
            operators.append(op)
            // Patterns were checked when written; one that no longer compiles never matches.
            if case .matches(let pattern) = op { patterns.append(try? BoundedRegex(pattern)) } else { patterns.append(nil) }
            node = .attribute(slot: slot(name), op: operators.count - 1)
        case .cohort(let key):
            node = cohortIndex[key].map(Node.cohort) ?? .constant(false)
        case .all(let items), .any(let items):
            let roots = items.map { compile($0) }
            let start = children.count
            children.append(contentsOf: roots)
            if case .all = condition { node = .all(start: start, count: roots.count) } else { node = .any(start: start, count: roots.count) }
        case .not(let inner):
            node = .not(compile(inner))
        }
        nodes.append(node)
        return nodes.count - 1
    }

    mutating func slot(_ name: String) -> Int {
        if let i = slots[name] { return i }
        slots[name] = attributeNames.count
        attributeNames.append(name)
        return attributeNames.count - 1
    }

    /// A rule's condition, evaluated at most once per request.
    func evaluateRule(_ rule: Int, _ context: inout EvaluationContext) -> Bool {
        switch context.ruleAnswers[rule] {
        case 1: return false
        case 2: return true
        default:
            let answer = evaluate(ruleRoots[rule], &context)
            context.ruleAnswers[rule] = answer ? 2 : 1
            return answer
        }
    }

    func evaluate(_ root: Int, _ context: inout EvaluationContext) -> Bool {
        nodes.withUnsafeBufferPointer { nodes in
            children.withUnsafeBufferPointer { children in
                operators.withUnsafeBufferPointer { operators in
                    Self.evaluate(root, nodes, children, operators, patterns, cohortRoots, &context)
                }
            }
        }
    }

    private static func evaluate(
        _ index: Int, _ nodes: UnsafeBufferPointer<Node>, _ children: UnsafeBufferPointer<Int>, _ operators: UnsafeBufferPointer<AttributeOperator>,
        _ patterns: [BoundedRegex?], _ cohortRoots: [Int], _ context: inout EvaluationContext
    ) -> Bool {
        switch nodes[index] {
        case .constant(let b): return b
        case .not(let inner): return !evaluate(inner, nodes, children, operators, patterns, cohortRoots, &context)
        case .all(let start, let count):
            for i in start..<(start + count) where !evaluate(children[i], nodes, children, operators, patterns, cohortRoots, &context) { return false }
            return true
        case .any(let start, let count):
            for i in start..<(start + count) where evaluate(children[i], nodes, children, operators, patterns, cohortRoots, &context) { return true }
            return false
        case .cohort(let cohort):
            // Each cohort is evaluated at most once per request; 3 marks one in progress, so a
            // cycle (rejected at write time anyway) reads false instead of looping.
            switch context.cohortAnswers[cohort] {
            case 1, 3: return false
            case 2: return true
            default:
                context.cohortAnswers[cohort] = 3
                let answer = evaluate(cohortRoots[cohort], nodes, children, operators, patterns, cohortRoots, &context)
                context.cohortAnswers[cohort] = answer ? 2 : 1
                return answer
            }
        case .attribute(let slot, let op):
            return apply(operators[op], op: op, patterns: patterns, slot: slot, &context)
        }
    }

    /// docs/api.md (conditions): a missing attribute makes every operator but `exists` and `not_in` false.
    private static func apply(
        _ op: AttributeOperator, op index: Int, patterns: [BoundedRegex?], slot: Int, _ context: inout EvaluationContext
    ) -> Bool {
        guard let value = context.values[slot] else {
            switch op {
            case .exists(let expected): return !expected
            case .notIn: return true
            default: return false
            }
        }
        switch op {
        case .exists(let expected): return expected
        case .eq(let operand): return value.looselyEquals(operand)
        case .neq(let operand): return !value.looselyEquals(operand)
        case .in(let list):
            for operand in list where value.looselyEquals(operand) { return true }
            return false
        case .notIn(let list):
            for operand in list where value.looselyEquals(operand) { return false }
            return true
        // Byte-wise, as the other flag systems compare: no Unicode normalisation on the hot path.
        case .contains(let s): return s.isEmpty || value.text.utf8.firstRange(of: s.utf8) != nil
        case .startsWith(let s): return value.text.utf8.starts(with: s.utf8)
        case .endsWith(let s): return value.text.utf8.reversed().starts(with: s.utf8.reversed())
        case .numeric(let comparison, let operand):
            guard let n = value.number else { return false }
            switch comparison {
            case .lt: return n < operand
            case .lte: return n <= operand
            case .gt: return n > operand
            case .gte: return n >= operand
            }
        case .semver(let comparison, let operand):
            guard let v = context.semver(slot) else { return false }
            switch comparison {
            case .lt: return v < operand
            case .lte: return v <= operand
            case .gt: return v > operand
            case .gte: return v >= operand
            case .eq: return v == operand
            }
        case .matches: return patterns[index]?.matches(value.text) ?? false
        }
    }
}

/// One request's attributes resolved into the snapshot's slots, with per-request caches of
/// parsed versions and cohort answers.
public struct EvaluationContext {
    let userID: String?
    let anonymousID: String?
    var values: [Scalar?]
    private var semvers: [SemanticVersion??]
    var cohortAnswers: [UInt8]  // 0 not yet evaluated, 1 false, 2 true, 3 in progress
    var ruleAnswers: [UInt8]  // 0 not yet evaluated, 1 false, 2 true

    init(_ context: AssignmentContext, program: ConditionProgram) {
        userID = context.userID
        anonymousID = context.anonymousID
        values = program.attributeNames.map { context.attribute($0) }
        semvers = Array(repeating: nil, count: values.count)
        cohortAnswers = Array(repeating: 0, count: program.cohortRoots.count)
        ruleAnswers = Array(repeating: 0, count: program.ruleRoots.count)
    }

    @inline(__always)
    func unit(_ kind: UnitKind) -> String? {
        switch kind {
        case .userID: userID
        case .anonymousID: anonymousID
        }
    }

    mutating func semver(_ slot: Int) -> SemanticVersion? {
        if let cached = semvers[slot] { return cached }
        let parsed = values[slot].flatMap { SemanticVersion($0.text) }
        semvers[slot] = .some(parsed)
        return parsed
    }
}
