/// Everything assignment needs, compiled once and then only read: the active experiments
/// (not draft, not archived) with cohorts inlined and patterns compiled, and the opted-out units.
/// A new snapshot replaces the old one whole whenever configuration changes.
public struct ConfigSnapshot: Sendable {
    /// Identifies the configuration this snapshot was built from (ETags use it).
    public let revision: String
    /// Active experiments ordered by key.
    public let experiments: [CompiledExperiment]
    public let optedOut: Set<String>
    /// Stored objects that could not be read when this snapshot was loaded
    /// (`ConfigSnapshot(stored:previous:)` says what is served for them).
    public let unreadable: [UnreadableObject]
    private let index: [String: Int]
    /// What the snapshot was compiled from, so that the next one can keep an object it cannot read.
    private let sources: (experiments: [String: Experiment], cohorts: [String: Cohort])

    /// Every condition of the snapshot.
    let program: ConditionProgram

    public init(revision: String, experiments: [Experiment], cohorts: [Cohort], optedOut: Set<String>, unreadable: [UnreadableObject] = []) {
        var program = ConditionProgram(cohorts: cohorts)
        let active = experiments.filter { !$0.isArchived && $0.status != .draft }.sorted { $0.key < $1.key }
        self.revision = revision
        self.experiments = active.enumerated().map { CompiledExperiment($1, position: $0, program: &program) }
        self.optedOut = optedOut
        self.unreadable = unreadable.sorted()
        self.index = Dictionary(uniqueKeysWithValues: self.experiments.enumerated().map { ($1.key, $0) })
        self.sources = (
            Dictionary(active.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a }), Dictionary(cohorts.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        )
        self.program = program
    }

    /// The experiment `key` as this snapshot was compiled from it.
    public func source(experiment key: String) -> Experiment? { sources.experiments[key] }
    public func source(cohort key: String) -> Cohort? { sources.cohorts[key] }

    /// Resolves a context's attributes once for every experiment of this snapshot.
    public func evaluationContext(_ context: AssignmentContext) -> EvaluationContext {
        EvaluationContext(context, program: program)
    }

    /// Evaluates a condition that is not part of the snapshot, against its cohorts.
    public func evaluate(_ condition: Condition, _ context: AssignmentContext) -> Bool {
        var extended = program
        let root = extended.compile(condition)
        var evaluation = EvaluationContext(context, program: extended)
        return extended.evaluate(root, &evaluation)
    }

    public static let empty = ConfigSnapshot(revision: "0", experiments: [], cohorts: [], optedOut: [])

    public func experiment(_ key: String) -> CompiledExperiment? {
        index[key].map { experiments[$0] }
    }
}

/// One experiment, prepared for the hot path: salts, variant lookups and reason strings are
/// computed here so that assigning allocates as little as possible.
public final class CompiledExperiment: Sendable {
    public struct CompiledRule: Sendable {
        /// The rule's condition in the snapshot's program; `nil` matches everyone.
        public let when: Int?
        /// `(variant index, cumulative upper bound in buckets)`; one entry for a single-variant serve.
        public let ranges: [(variant: Int, upper: Int)]
        public let traffic: Int
        public let reason: String
        public let isSplit: Bool
    }

    public let key: String
    public let status: ExperimentStatus
    /// Which of the request's ids is its unit.
    public let attribution: Attribution
    public var unit: UnitKind { attribution.unit }
    public let salt: String
    public let layerRange: LayerRange?
    let saltPrefix: Murmur3.Partial
    let trafficPrefix: Murmur3.Partial
    let layerPrefix: Murmur3.Partial?
    public let optOut: Bool
    public let variants: [Variant]
    /// Each variant's value as canonical JSON bytes, so responses copy instead of encoding.
    public let valueJSON: [[UInt8]]
    public let control: Int
    public let winner: Int?
    public let rules: [CompiledRule]
    public let revision: Int

    /// Where this experiment stands in its snapshot's `experiments`.
    public let position: Int

    init(_ experiment: Experiment, position: Int, program: inout ConditionProgram) {
        self.position = position
        let d = experiment.definition
        key = d.key
        status = experiment.status
        attribution = Attribution(d)
        salt = d.salt
        layerRange = d.layerRange
        saltPrefix = Bucketing.prefix(salt: d.salt)
        trafficPrefix = Bucketing.prefix(salt: Bucketing.trafficSalt(d.salt))
        layerPrefix = d.layer.map { Bucketing.prefix(salt: Bucketing.layerSalt($0)) }
        optOut = d.optOut
        variants = d.variants
        valueJSON = d.variants.map { Array($0.value.canonicalData()) }
        revision = experiment.revision
        let position = Dictionary(uniqueKeysWithValues: d.variants.enumerated().map { ($1.key, $0) })
        control = position[d.control] ?? 0
        winner = experiment.winner.flatMap { position[$0] }
        var compiledRules: [CompiledRule] = []
        for rule in d.rules {
            var ranges: [(Int, Int)] = []
            var isSplit = false
            switch rule.serve {
            case .variant(let v): ranges = [(position[v] ?? 0, Bucketing.buckets)]
            case .split(let entries):
                isSplit = true
                var upper = 0
                for entry in entries {
                    upper += entry.weight
                    ranges.append((position[entry.variant] ?? 0, upper))
                }
            }
            compiledRules.append(
                CompiledRule(
                    when: rule.when.map { program.compileRule($0) }, ranges: ranges, traffic: rule.traffic,
                    reason: "rule:" + rule.name, isSplit: isSplit))
        }
        rules = compiledRules
    }
}
