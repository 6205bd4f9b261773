import Testing

@testable import AviaryServer

struct RateLimiterTests {
    @Test func aKeyBurstsToTwiceItsRateThenKeepsToIt() {
        let limiter = RateLimiter(rate: 10)
        let start = ContinuousClock.now
        var passed = 0
        for _ in 0..<50 where limiter.take("k", now: start) == nil { passed += 1 }
        #expect(passed == 20)
        // The next token comes after a tenth of a second; other keys have their own bucket.
        #expect(abs((limiter.take("k", now: start) ?? 0) - 0.1) < 1e-9)
        #expect(limiter.take("other", now: start) == nil)
        #expect(limiter.take("k", now: start + .milliseconds(100)) == nil)
        #expect(limiter.take("k", now: start + .milliseconds(100)) != nil)
        // A pause refills up to the burst, no more.
        var later = 0
        for _ in 0..<50 where limiter.take("k", now: start + .seconds(60)) == nil { later += 1 }
        #expect(later == 20)
    }
}
