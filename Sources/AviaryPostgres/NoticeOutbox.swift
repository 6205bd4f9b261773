import AviaryCore
import Foundation
import Logging
import PostgresNIO

/// The notice outbox (migration 0011): rollout notices written in the transaction of the change
/// that makes them, taken by one server at a time for an attempt (its lease), and marked
/// delivered or due again with backoff.
public struct NoticeOutbox: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    /// A notice taken for one attempt.
    public struct Taken: Sendable {
        public var id: Int64
        public var delivery: String
        public var experiment: String
        public var url: String
        public var body: String
        /// This attempt's number, from 1.
        public var attempt: Int
    }

    /// Writes `notice` inside the caller's transaction, with the change it announces.
    func insert(_ notice: RolloutNotice, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO notice_outbox (delivery, experiment_key, event, url, body)
            VALUES (\(notice.delivery)::uuid, \(notice.experiment), \(notice.event), \(notice.url), \(notice.body.canonicalString()))
            """, logger: logger)
    }

    /// Takes up to `limit` notices that are due for an attempt, oldest first, and leases each
    /// for `lease`: no other server takes it before the lease ends, by which time this one has
    /// marked it. Servers taking at once take different notices (`SKIP LOCKED`).
    public func take(limit: Int = 16, lease: Duration) async throws -> [Taken] {
        try await database.query(
            """
            UPDATE notice_outbox SET attempts = attempts + 1, next_attempt_at = now() + make_interval(secs => \(lease.inSeconds))
            WHERE id IN (SELECT id FROM notice_outbox WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= now()
                         ORDER BY id LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING id, delivery::text, experiment_key, url, body, attempts
            """) { rows in
            var taken: [Taken] = []
            for try await (id, delivery, experiment, url, body, attempts) in rows.decode((Int64, String, String, String, String, Int).self) {
                taken.append(Taken(id: id, delivery: delivery, experiment: experiment, url: url, body: body, attempt: attempts))
            }
            return taken.sorted { $0.id < $1.id }
        }
    }

    public func delivered(_ id: Int64) async throws {
        try await database.execute(
            "UPDATE notice_outbox SET delivered_at = now(), last_error = NULL WHERE id = \(id) AND delivered_at IS NULL")
    }

    /// An attempt failed with `error`: the notice is due again after `retryAfter`, or given up.
    public func failed(_ id: Int64, error: String, retryAfter: Duration?) async throws {
        let seconds = retryAfter?.inSeconds
        try await database.execute(
            """
            UPDATE notice_outbox SET last_error = \(String(error.prefix(500))),
                next_attempt_at = CASE WHEN \(seconds)::float8 IS NULL THEN next_attempt_at ELSE now() + make_interval(secs => \(seconds)::float8) END,
                gave_up_at = CASE WHEN \(seconds)::float8 IS NULL THEN now() END
            WHERE id = \(id) AND delivered_at IS NULL
            """)
    }

    /// The notices of experiment `key`, oldest first, as `GET /v1/experiments/{key}/notices`
    /// shows them.
    public func list(experiment key: String) async throws -> [JSON] {
        try await database.query(
            """
            SELECT delivery::text, event, url, created_at, attempts, delivered_at, gave_up_at, last_error, next_attempt_at, body
            FROM notice_outbox WHERE experiment_key = \(key) ORDER BY id
            """) { rows in
            var result: [JSON] = []
            for try await (delivery, event, url, created, attempts, delivered, gaveUp, lastError, next, body) in rows.decode(
                (String, String, String, Date, Int, Date?, Date?, String?, Date, String).self)
            {
                let state = delivered != nil ? "delivered" : gaveUp != nil ? "failed" : "pending"
                result.append([
                    "delivery": .string(delivery), "event": .string(event), "url": .string(url), "state": .string(state),
                    "created_at": .string(Timestamp.format(created)), "attempts": .number(Double(attempts)),
                    "delivered_at": delivered.map { .string(Timestamp.format($0)) } ?? .null,
                    "failed_at": gaveUp.map { .string(Timestamp.format($0)) } ?? .null,
                    "next_attempt_at": state == "pending" ? .string(Timestamp.format(next)) : .null,
                    "last_error": lastError.map(JSON.string) ?? .null, "body": (try? JSON.stored(body)) ?? .null,
                ])
            }
            return result
        }
    }
}
