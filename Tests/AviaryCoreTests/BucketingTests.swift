import AviaryCore
import Foundation
import Testing

/// χ² upper tail for one degree of freedom: P(X > x) = erfc(√(x/2)).
func chiSquareP1(_ x: Double) -> Double { erfc((x / 2).squareRoot()) }

@Suite struct Murmur3Tests {
    /// Published MurmurHash3_x86_32 vectors (SMHasher; the Wikipedia article's examples).
    @Test(arguments: [
        ("", UInt32(0), UInt32(0)), ("", 1, 0x514E_28B7), ("hello", 0, 613_153_351), ("Hello, world!", 0, 0xC036_3E43),
        ("The quick brown fox jumps over the lazy dog", 0, 0x2E4F_F723), ("\0\0\0\0", 0, 0x2362_F9DE), ("aaa", 0x9747_B28C, 0x283E_0130),
        ("abc", 0, 0xB3DD_93FA), ("abcd", 0, 0x43ED_676A),
    ])
    func publishedVectors(_ input: String, _ seed: UInt32, _ expected: UInt32) {
        #expect(Murmur3.hash32(input, seed: seed) == expected)
    }
}

@Suite struct BucketingTests {
    /// The test vectors of docs/api.md ("Bucketing"): (salt, unit) → h, bucket.
    @Test(arguments: [
        ("chat-release", "user-1", UInt32(770_822_936), 1794), ("chat-release", "user-2", 3_854_315_846, 8974),
        ("search-plugin", "user-1", 3_790_329_240, 8825), ("model-eval", "42", 2_922_330_304, 6804), ("区域", "用户-7", 2_384_837_873, 5552),
    ])
    func specVectors(_ salt: String, _ unit: String, _ hash: UInt32, _ bucket: Int) {
        #expect(Bucketing.hash(salt: salt, unit: unit) == hash)
        #expect(Bucketing.bucket(salt: salt, unit: unit) == bucket)
    }

    /// Unleash's `normalizedValue(id, groupId)` is `murmur3("groupId:id") % 100 + 1`.
    @Test(arguments: [("gr1", "123", 73), ("groupX", "999", 25)])
    func unleashVectors(_ group: String, _ id: String, _ expected: Int) {
        #expect(Int(Bucketing.hash(salt: group, unit: id) % 100) + 1 == expected)
    }

    @Test func longUnitsHashLikeTheirConcatenation() {
        let unit = String(repeating: "x", count: 2000)
        #expect(Bucketing.hash(salt: "s", unit: unit) == Murmur3.hash32("s:" + unit))
    }

    @Test func deterministicAndInRange() {
        for i in 0..<10_000 {
            let b = Bucketing.bucket(salt: "chat-release", unit: "user-\(i)")
            #expect(b == Bucketing.bucket(salt: "chat-release", unit: "user-\(i)"))
            #expect((0..<10_000).contains(b))
        }
    }

    @Test func fiftyFiftySplitPassesChiSquare() {
        var counts = [0, 0]
        for i in 0..<100_000 { counts[Bucketing.bucket(salt: "chat-release", unit: "user-\(i)") < 5000 ? 0 : 1] += 1 }
        let expected = 50_000.0
        let chi2 = counts.reduce(0.0) { $0 + pow(Double($1) - expected, 2) / expected }
        #expect(chiSquareP1(chi2) > 0.001, "counts \(counts), χ² \(chi2)")
    }

    @Test func fivePercentLandsWithinPointThree() {
        let n = 100_000
        let inside = (0..<n).filter { Bucketing.bucket(salt: "chat-release", unit: "user-\($0)") < 500 }.count
        let percent = Double(inside) * 100 / Double(n)
        #expect(abs(percent - 5) <= 0.3, "\(percent) %")
    }

    @Test func differentSaltsAreIndependent() {
        // 2×2 table: in the first half under salt A × in the first half under salt B.
        var table = [[0, 0], [0, 0]]
        for i in 0..<100_000 {
            let a = Bucketing.bucket(salt: "chat-release", unit: "user-\(i)") < 5000 ? 0 : 1
            let b = Bucketing.bucket(salt: "search-plugin", unit: "user-\(i)") < 5000 ? 0 : 1
            table[a][b] += 1
        }
        let n = 100_000.0
        let rows = table.map { Double($0[0] + $0[1]) }
        let cols = [Double(table[0][0] + table[1][0]), Double(table[0][1] + table[1][1])]
        var chi2 = 0.0
        for r in 0..<2 {
            for c in 0..<2 {
                let e = rows[r] * cols[c] / n
                chi2 += pow(Double(table[r][c]) - e, 2) / e
            }
        }
        #expect(chiSquareP1(chi2) > 0.001, "table \(table), χ² \(chi2)")
    }

    @Test func chiSquareHelperMatchesKnownValues() {
        // scipy.stats.chi2.sf(3.841458820694124, 1) = 0.05; chi2.sf(10.827566170662733, 1) = 0.001
        #expect(abs(chiSquareP1(3.841458820694124) - 0.05) < 1e-12)
        #expect(abs(chiSquareP1(10.827566170662733) - 0.001) < 1e-12)
    }
}

@Suite struct Murmur3PartialTests {
    @Test(arguments: ["", "a", "ab", "abc", "abcd", "abcde", "chat-release:", "区域:"])
    func prefixThenSuffixEqualsTheWhole(_ prefix: String) {
        for suffix in ["", "u", "user-1", "用户-7", String(repeating: "z", count: 33)] {
            #expect(Murmur3.Partial(prefix: prefix).hash(appending: suffix) == Murmur3.hash32(prefix + suffix))
        }
    }

    @Test func prefixedBucketsMatchSpecVectors() {
        #expect(Bucketing.bucket(prefix: Bucketing.prefix(salt: "chat-release"), unit: "user-1") == 1794)
        #expect(Bucketing.bucket(prefix: Bucketing.prefix(salt: "区域"), unit: "用户-7") == 5552)
    }
}
