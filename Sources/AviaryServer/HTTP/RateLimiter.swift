import AviaryCore
import Hummingbird
import Synchronization

/// Requests per second per API key (`AVIARY_RATE_LIMIT`, docs/security.md): a token bucket per
/// key holding up to twice the rate, so a key may burst and then keeps to the rate. Buckets are
/// per server and per key id; keys are authenticated first, so their number is bounded.
final class RateLimiter: Sendable {
    let rate: Double
    let burst: Double
    private let buckets = Mutex<[String: Bucket]>([:])

    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    init(rate: Double) {
        self.rate = rate
        burst = max(1, rate * 2)
    }

    /// Takes one token for `key`: nil when the request may go, else the seconds until it could.
    func take(_ key: String, now: ContinuousClock.Instant = .now) -> Double? {
        buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = elapsed.inSeconds
            bucket.tokens = min(burst, bucket.tokens + max(0, seconds) * rate)
            bucket.updated = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else { return (1 - bucket.tokens) / rate }
            bucket.tokens -= 1
            return nil
        }
    }
}

/// Refuses a key's requests beyond its rate with `429` and `Retry-After`; passes everything
/// when no limit is set. Goes after the authentication middleware, which names the key.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = AviaryRequestContext
    let limiter: RateLimiter?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let limiter, let key = context.apiKey, let wait = limiter.take(key.id) {
            let seconds = max(1, Int(wait.rounded(.up)))
            throw APIError(
                .tooManyRequests, code: "rate_limited",
                message: "this key sent more than \(limiter.rate) requests per second (AVIARY_RATE_LIMIT); retry in \(seconds) s",
                headers: [.retryAfter: "\(seconds)"])
        }
        return try await next(request, context)
    }
}
