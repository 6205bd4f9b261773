import AviaryPostgres
import Foundation
import Logging
import ServiceLifecycle

/// Keeps the monthly event partitions of this month and the next two in place, at start and
/// every few hours, so a long-running server never sends new events to the default partition;
/// with a retention, drops the whole months older than it (docs/operations.md, "Retention").
struct EventPartitionService: Service {
    let repository: EventRepository
    let interval: Duration
    /// `AVIARY_EVENT_RETENTION_DAYS`; nil: keep everything.
    let retentionDays: Int?
    let logger: Logger

    /// How long creating or dropping partitions waits for PostgreSQL (docs/operations.md, "Deadlines").
    static let limit: Duration = .seconds(60)

    func run() async throws {
        await everyInterval(interval, startingAtOnce: true) {
            do {
                try await QueryDeadline.within(Self.limit) { [repository] in try await repository.ensurePartitions() }
            } catch {
                logger.warning("could not create event partitions; events go to the default partition", metadata: ["error": "\(error)"])
            }
            guard let retentionDays else { return }
            do {
                let cutoff = Date().addingTimeInterval(-Double(retentionDays) * 86_400)
                let dropped = try await QueryDeadline.within(Self.limit) { [repository] in
                    try await repository.dropPartitions(endingBefore: cutoff, retentionDays: retentionDays)
                }
                for name in dropped {
                    logger.notice("dropped event partition past the retention", metadata: ["partition": "\(name)", "retention_days": "\(retentionDays)"])
                }
            } catch {
                logger.warning("could not drop old event partitions", metadata: ["error": "\(error)"])
            }
        }
    }
}
