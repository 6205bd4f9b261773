/// MurmurHash3 x86_32 (Austin Appleby's reference `MurmurHash3_x86_32`), the hash Unleash,
/// flagd and Aviary bucket with. Swift's `Hasher` is seeded per process and must never be used
/// for bucketing.
public enum Murmur3 {
    public static func hash32(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        var state = Partial(seed: seed)
        state.update(bytes)
        return state.finalize()
    }

    public static func hash32(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { hash32($0, seed: seed) }
    }

    public static func hash32(_ string: String, seed: UInt32 = 0) -> UInt32 {
        var s = string
        return s.withUTF8 { hash32(UnsafeRawBufferPointer($0), seed: seed) }
    }
}

extension Murmur3 {
    /// MurmurHash3 x86_32 fed in pieces: a prefix such as `"<salt>:"` is hashed once per
    /// snapshot and each request only feeds its unit id. Gives the same result as hashing the
    /// concatenation.
    public struct Partial: Sendable {
        var h: UInt32
        var pending: UInt32 = 0
        var pendingCount = 0
        var length = 0

        public init(seed: UInt32 = 0) { h = seed }

        public init(prefix: String, seed: UInt32 = 0) {
            h = seed
            update(prefix)
        }

        @inline(__always)
        static func mix(_ k: UInt32) -> UInt32 {
            var k = k &* 0xcc9e_2d51
            k = (k << 15) | (k >> 17)
            return k &* 0x1b87_3593
        }

        @inline(__always)
        public mutating func update(_ byte: UInt8) {
            pending |= UInt32(byte) << (8 * UInt32(pendingCount))
            pendingCount += 1
            length += 1
            if pendingCount == 4 {
                h ^= Self.mix(pending)
                h = (h << 13) | (h >> 19)
                h = h &* 5 &+ 0xe654_6b64
                pending = 0
                pendingCount = 0
            }
        }

        public mutating func update(_ string: String) {
            let done: Void? = string.utf8.withContiguousStorageIfAvailable { update(UnsafeRawBufferPointer($0)) }
            if done == nil { for byte in string.utf8 { update(byte) } }
        }

        /// Whole 4-byte blocks go straight to the mixer once earlier bytes are aligned.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            var i = 0
            let count = bytes.count
            while pendingCount != 0, i < count {
                update(bytes[i])
                i += 1
            }
            while i + 4 <= count {
                let k = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian
                h ^= Self.mix(k)
                h = (h << 13) | (h >> 19)
                h = h &* 5 &+ 0xe654_6b64
                length += 4
                i += 4
            }
            while i < count {
                update(bytes[i])
                i += 1
            }
        }

        public func finalize() -> UInt32 {
            var h = self.h
            if pendingCount > 0 { h ^= Self.mix(pending) }
            h ^= UInt32(truncatingIfNeeded: length)
            h ^= h >> 16
            h &*= 0x85eb_ca6b
            h ^= h >> 13
            h &*= 0xc2b2_ae35
            h ^= h >> 16
            return h
        }

        /// The hash of the prefix followed by `suffix`.
        @inline(__always)
        public func hash(appending suffix: String) -> UInt32 {
            var copy = self
            copy.update(suffix)
            return copy.finalize()
        }
    }
}
