import Atomics
import AviaryCore
import HTTPTypes

/// The configuration snapshot every request reads. Readers load it with one atomic operation,
/// never a lock; a reload swaps in a whole new snapshot.
public final class SnapshotStore: Sendable {
    /// A snapshot with the response headers it needs, prepared once per reload.
    final class Box: AtomicReference, Sendable {
        let snapshot: ConfigSnapshot
        let headers: AssignmentHeaders
        init(_ snapshot: ConfigSnapshot) {
            self.snapshot = snapshot
            self.headers = AssignmentHeaders(snapshot)
        }
    }

    private let current = ManagedAtomic<Box>(Box(.empty))
    private let loaded = ManagedAtomic<Bool>(false)

    public init() {}

    public var snapshot: ConfigSnapshot { current.load(ordering: .acquiring).snapshot }

    /// The snapshot and its prepared headers, read together.
    var prepared: (snapshot: ConfigSnapshot, headers: AssignmentHeaders) {
        let box = current.load(ordering: .acquiring)
        return (box.snapshot, box.headers)
    }

    /// False until the first snapshot has been read from the database.
    public var isLoaded: Bool { loaded.load(ordering: .acquiring) }

    public func replace(with snapshot: ConfigSnapshot) {
        current.store(Box(snapshot), ordering: .releasing)
        loaded.store(true, ordering: .releasing)
    }
}

/// `X-Aviary-Variant-<key>` names and `X-Aviary-Assignments` members for every experiment and
/// variant of a snapshot, so that answering builds no header name and parses nothing.
struct AssignmentHeaders: Sendable {
    /// By experiment position.
    let variantHeader: [HTTPField.Name?]
    /// By experiment position, then variant index: `key=variant` as RFC 8941 writes it, or nil
    /// for experiments whose key cannot be a dictionary key.
    let dictionaryMember: [[String]?]
    /// By experiment position: `"key":{"in_experiment":` of the JSON body.
    let bodyPrefix: [[UInt8]]
    /// By experiment position, then variant index: `,"value":…,"variant":"…"}` of the JSON body.
    let bodySuffix: [[[UInt8]]]

    init(_ snapshot: ConfigSnapshot) {
        variantHeader = snapshot.experiments.map { HTTPField.Name("X-Aviary-Variant-" + $0.key) }
        dictionaryMember = snapshot.experiments.map { experiment in
            guard Self.isDictionaryKey(experiment.key) else { return nil }
            return experiment.variants.map { experiment.key + "=" + Self.item($0.key) }
        }
        // Keys and variant keys follow the key grammar: nothing in them needs JSON escaping.
        bodyPrefix = snapshot.experiments.map { Array("\"\($0.key)\":{\"in_experiment\":".utf8) }
        bodySuffix = snapshot.experiments.map { experiment in
            experiment.variants.indices.map { v in
                Array(",\"value\":".utf8) + experiment.valueJSON[v] + Array(",\"variant\":\"\(experiment.variants[v].key)\"}".utf8)
            }
        }
    }

    /// RFC 8941 dictionary keys start with a lower-case letter or `*`; Aviary keys may start with
    /// a digit, and those experiments appear only in their `X-Aviary-Variant-<key>` header.
    static func isDictionaryKey(_ key: String) -> Bool {
        guard let first = key.utf8.first else { return false }
        return first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")
    }

    /// A variant key as an RFC 8941 item: a token when it starts with a letter, else a string.
    /// The key grammar leaves nothing to escape in either.
    static func item(_ key: String) -> String {
        guard let first = key.utf8.first, (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) else { return "\"" + key + "\"" }
        return key
    }
}
