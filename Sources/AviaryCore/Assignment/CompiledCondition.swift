/// A condition ready to evaluate: cohorts inlined, patterns compiled. Built once per snapshot.
public indirect enum CompiledCondition: Sendable {
    case attribute(String, CompiledOperator)
    case all([CompiledCondition])
    case any([CompiledCondition])
    case not(CompiledCondition)
    case constant(Bool)

    public enum CompiledOperator: Sendable {
        case eq(Scalar)
        case neq(Scalar)
        case `in`([Scalar])
        case notIn([Scalar])
        case contains(String)
        case startsWith(String)
        case endsWith(String)
        case exists(Bool)
        case numeric(NumericComparison, Double)
        case semver(SemverComparison, SemanticVersion)
        case matches(BoundedRegex)
    }

    /// - Parameter cohorts: every cohort's condition, to inline references. An unknown cohort or a
    ///   cycle (both rejected at write time) evaluates to false rather than failing a request.
    public init(_ condition: Condition, cohorts: [String: Condition], visiting: Set<String> = []) {
        switch condition {
        case .attribute(let name, let op):
            self = .attribute(name, Self.compile(op))
        case .cohort(let key):
            if let c = cohorts[key], !visiting.contains(key) {
                self = CompiledCondition(c, cohorts: cohorts, visiting: visiting.union([key]))
            } else {
                self = .constant(false)
            }
        case .all(let items): self = .all(items.map { CompiledCondition($0, cohorts: cohorts, visiting: visiting) })
        case .any(let items): self = .any(items.map { CompiledCondition($0, cohorts: cohorts, visiting: visiting) })
        case .not(let inner): self = .not(CompiledCondition(inner, cohorts: cohorts, visiting: visiting))
        }
    }

    static func compile(_ op: AttributeOperator) -> CompiledOperator {
        switch op {
        case .eq(let s): .eq(s)
        case .neq(let s): .neq(s)
        case .in(let l): .in(l)
        case .notIn(let l): .notIn(l)
        case .contains(let s): .contains(s)
        case .startsWith(let s): .startsWith(s)
        case .endsWith(let s): .endsWith(s)
        case .exists(let b): .exists(b)
        case .numeric(let c, let n): .numeric(c, n)
        case .semver(let c, let v): .semver(c, v)
        case .matches(let p):
            // Patterns were compiled when written; one that no longer compiles never matches.
            (try? BoundedRegex(p)).map(CompiledOperator.matches) ?? .exists(false)
        }
    }

    /// SPEC 3: a missing attribute makes every operator but `exists` and `not_in` false.
    public func evaluate(_ context: AssignmentContext) -> Bool {
        switch self {
        case .constant(let b): return b
        case .all(let items):
            for item in items where !item.evaluate(context) { return false }
            return true
        case .any(let items):
            for item in items where item.evaluate(context) { return true }
            return false
        case .not(let inner): return !inner.evaluate(context)
        case .attribute(let name, let op):
            guard let value = context.attribute(name) else {
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
            case .contains(let s): return value.text.contains(s)
            case .startsWith(let s): return value.text.hasPrefix(s)
            case .endsWith(let s): return value.text.hasSuffix(s)
            case .numeric(let comparison, let operand):
                guard let n = value.number else { return false }
                switch comparison {
                case .lt: return n < operand
                case .lte: return n <= operand
                case .gt: return n > operand
                case .gte: return n >= operand
                }
            case .semver(let comparison, let operand):
                guard let v = SemanticVersion(value.text) else { return false }
                switch comparison {
                case .lt: return v < operand
                case .lte: return v <= operand
                case .gt: return v > operand
                case .gte: return v >= operand
                case .eq: return v == operand
                }
            case .matches(let regex): return regex.matches(value.text)
            }
        }
    }
}
