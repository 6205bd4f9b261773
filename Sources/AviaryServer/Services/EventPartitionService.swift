import AviaryPostgres
import Logging
import ServiceLifecycle

/// Keeps the monthly event partitions of this month and the next two in place, at start and
/// every few hours, so a long-running server never sends new events to the default partition.
struct EventPartitionService: Service {
    let repository: EventRepository
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await everyInterval(interval, startingAtOnce: true) {
            do {
                try await repository.ensurePartitions()
            } catch {
                logger.warning("could not create event partitions; events go to the default partition", metadata: ["error": "\(error)"])
            }
        }
    }
}
