import AviaryCore
import AviaryPostgres
import Crypto
import Foundation
import Logging
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Delivers the notice outbox (`NoticeOutbox`, docs/api.md "The notice"): every server polls
/// it, takes the notices that are due — each by one server at a time, for one attempt — and
/// posts them, at least once, with backoff from `firstDelay` and up to `attempts` tries. A
/// server that dies mid-attempt leaves its notice to another once the lease ends; the delivery
/// id is the notice's own, the same on every attempt. With a secret every delivery is signed
/// (`X-Aviary-Signature`); redirects are never followed, so a receiver cannot send the notice
/// on to a host the allow-list would refuse. On graceful shutdown it takes no more notices.
final class NoticeDeliverer: Service, Sendable {
    let outbox: NoticeOutbox
    let logger: Logger
    let secret: String?
    private let session: URLSession
    let attempts: Int
    let firstDelay: Duration
    let timeout: TimeInterval
    let pollInterval: Duration
    let metrics: AviaryMetrics?

    init(
        outbox: NoticeOutbox, logger: Logger, secret: String? = nil, attempts: Int = 6, firstDelay: Duration = .milliseconds(500),
        timeout: TimeInterval = 5, pollInterval: Duration = .seconds(1), metrics: AviaryMetrics? = nil
    ) {
        self.outbox = outbox
        self.logger = logger
        self.secret = secret
        session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        self.attempts = attempts
        self.firstDelay = firstDelay
        self.timeout = timeout
        self.pollInterval = pollInterval
        self.metrics = metrics
    }

    /// How long a taken notice is this server's: its attempt's timeout and a margin.
    var lease: Duration { .seconds(timeout) + .seconds(5) }

    func run() async throws {
        await everyInterval(pollInterval) { await deliverDue() }
    }

    /// Takes the notices due now and makes one attempt at each, side by side.
    func deliverDue() async {
        let taken: [NoticeOutbox.Taken]
        do {
            taken = try await QueryDeadline.within(.seconds(5)) { [outbox, lease] in try await outbox.take(lease: lease) }
        } catch {
            return  // the database is away: the notices wait in the outbox
        }
        await withDiscardingTaskGroup { group in
            for notice in taken { group.addTask { await self.attempt(notice) } }
        }
    }

    /// One attempt; then the notice is marked delivered, due again after the backoff, or given up.
    private func attempt(_ notice: NoticeOutbox.Taken) async {
        let failure: String
        if let url = URL(string: notice.url) {
            var request = URLRequest(url: url, timeoutInterval: timeout)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("aviary", forHTTPHeaderField: "User-Agent")
            request.setValue(notice.delivery, forHTTPHeaderField: "X-Aviary-Delivery")
            let body = Data(notice.body.utf8)
            if let secret { request.setValue(Self.signature(body, secret: secret), forHTTPHeaderField: "X-Aviary-Signature") }
            request.httpBody = body
            do {
                let (_, response) = try await session.data(for: request)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                if (200..<300).contains(status) {
                    await mark { try await self.outbox.delivered(notice.id) }
                    metrics?.recordNotice(.delivered)
                    return
                }
                failure = "answered \(status)"
            } catch {
                failure = "\(error)"
            }
        } else {
            failure = "not a URL"
        }
        let givingUp = notice.attempt >= attempts
        logger.warning(
            givingUp ? "rollout notice gave up" : "rollout notice failed; will retry",
            metadata: ["experiment": "\(notice.experiment)", "attempt": "\(notice.attempt)", "error": "\(failure.prefix(200))"])
        let backoff = firstDelay * (1 << min(notice.attempt - 1, 20))
        await mark { try await self.outbox.failed(notice.id, error: failure, retryAfter: givingUp ? nil : backoff) }
        metrics?.recordNotice(givingUp ? .gaveUp : .failed)
    }

    /// Writes an attempt's outcome; if the database is away, the lease ends and the notice is
    /// taken again — at least once, never lost.
    private func mark(_ write: @escaping @Sendable () async throws -> Void) async {
        do {
            try await QueryDeadline.within(.seconds(5), write)
        } catch {
            logger.warning("could not record a rollout notice's attempt; it will be tried again", metadata: ["error": "\(error)"])
        }
    }

    /// `sha256=` and the hex HMAC-SHA256 of the exact body.
    static func signature(_ body: Data, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8)))
        return "sha256=" + mac.hexString
    }

    /// Refuses every redirect: the answer is the receiver's own 3xx, a failed delivery.
    final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }
}
