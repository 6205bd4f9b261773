/// docs/api.md, "Bucketing": `bucket = (murmur3_x86_32("<salt>:<unit>") * 10_000) >> 32`, a number in 0 ..< 10_000
/// (hundredths of a percent). Stable across processes, replicas and releases.
public enum Bucketing {
    public static let buckets = 10_000

    /// The hash of `"<salt>:<unit>"`.
    public static func hash(salt: String, unit: String) -> UInt32 {
        prefix(salt: salt).hash(appending: unit)
    }

    @inlinable
    public static func bucket(hash: UInt32) -> Int {
        Int((UInt64(hash) &* UInt64(buckets)) >> 32)
    }

    public static func bucket(salt: String, unit: String) -> Int {
        bucket(hash: hash(salt: salt, unit: unit))
    }

    /// The bucket of `"<salt>:<unit>"` from the precomputed `"<salt>:"` state.
    @inline(__always)
    public static func bucket(prefix: Murmur3.Partial, unit: String) -> Int {
        bucket(hash: prefix.hash(appending: unit))
    }

    /// The hashing state after `"<salt>:"`, computed once per snapshot.
    public static func prefix(salt: String) -> Murmur3.Partial {
        Murmur3.Partial(prefix: salt + ":")
    }

    /// The traffic bucket (docs/api.md, "Bucketing"): a second, independent hash under `"<salt>.traffic"`.
    public static func trafficSalt(_ salt: String) -> String { salt + ".traffic" }

    /// The layer bucket (docs/api.md, "Bucketing"): `bucket("layer:<layer>", unit)`.
    public static func layerSalt(_ layer: String) -> String { "layer:" + layer }
}
