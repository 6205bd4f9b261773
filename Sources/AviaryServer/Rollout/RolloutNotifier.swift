import AviaryCore
import Crypto
import Foundation
import Logging
import ServiceLifecycle

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Posts a rollout's JSON notice to its `notify_url` (docs/api.md, "The notice"), off the
/// rollback's path: `notify` queues it, and this service delivers each in a task of its own,
/// retrying a failing receiver with backoff. On graceful shutdown it takes no new notices,
/// tries each pending one once more without waiting, and logs those it drops. With a secret,
/// every delivery is signed (`X-Aviary-Signature`); redirects are never followed, so a
/// receiver cannot send the notice on to a host the allow-list would refuse.
final class RolloutNotifier: Service, Sendable {
    struct Notice: Sendable {
        var url: URL
        var body: Data
        var experiment: String
        /// The same for every attempt at one notice, so a receiver can drop repeats.
        var delivery = UUID().uuidString.lowercased()
    }

    let logger: Logger
    let secret: String?
    private let session: URLSession
    let attempts: Int
    let firstDelay: Duration
    let timeout: TimeInterval
    private let queue: AsyncStream<Notice>
    private let enqueue: AsyncStream<Notice>.Continuation

    init(logger: Logger, secret: String? = nil, attempts: Int = 6, firstDelay: Duration = .milliseconds(500), timeout: TimeInterval = 5) {
        self.logger = logger
        self.secret = secret
        session = URLSession(configuration: .ephemeral, delegate: NoRedirects(), delegateQueue: nil)
        self.attempts = attempts
        self.firstDelay = firstDelay
        self.timeout = timeout
        (queue, enqueue) = AsyncStream.makeStream(of: Notice.self, bufferingPolicy: .bufferingNewest(1_000))
    }

    /// Queues the notice of `event` for `experiment`, when its rollout names a `notify_url`.
    func notify(_ experiment: Experiment, event: String, reason: String?) {
        guard let plan = experiment.definition.rollout, let target = plan.notifyURL, let url = URL(string: target) else { return }
        var payload: [String: JSON] = [
            "experiment": .string(experiment.key),
            "event": .string(event),
            "reason": reason.map(JSON.string) ?? .null,
            "variant": .string(plan.variant),
            "status": .string(experiment.status.rawValue),
            "at": .string(Timestamp.format(Date())),
        ]
        if let state = experiment.rolloutState { payload["rollout_state"] = state.json(plan: plan) }
        if case .dropped = enqueue.yield(Notice(url: url, body: JSON.object(payload).canonicalData(), experiment: experiment.key)) {
            logger.error("rollout webhook queue full; notice dropped", metadata: ["experiment": "\(experiment.key)"])
        }
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await notice in queue {
                    group.addTask { await self.deliver(notice) }
                }
            }
        } onGracefulShutdown: {
            self.enqueue.finish()
        }
    }

    private func deliver(_ notice: Notice) async {
        var delay = firstDelay
        for attempt in 1...attempts {
            var request = URLRequest(url: notice.url, timeoutInterval: timeout)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.setValue("aviary", forHTTPHeaderField: "User-Agent")
            request.setValue(notice.delivery, forHTTPHeaderField: "X-Aviary-Delivery")
            if let secret { request.setValue(Self.signature(notice.body, secret: secret), forHTTPHeaderField: "X-Aviary-Signature") }
            request.httpBody = notice.body
            do {
                let (_, response) = try await session.data(for: request)
                let status = (response as? HTTPURLResponse)?.statusCode ?? 0
                if (200..<300).contains(status) { return }
                logger.warning("rollout webhook answered \(status)", metadata: ["attempt": "\(attempt)"])
            } catch {
                logger.warning("rollout webhook failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
            if Task.isShuttingDownGracefully || attempt == attempts { break }
            let wait = delay
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: wait) } } catch {}
            delay *= 2
        }
        logger.error(
            Task.isShuttingDownGracefully ? "rollout webhook dropped at shutdown" : "rollout webhook gave up",
            metadata: ["experiment": "\(notice.experiment)", "url": "\(notice.url)"])
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
