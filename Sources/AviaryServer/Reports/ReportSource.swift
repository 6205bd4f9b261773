import AviaryCore
import AviaryPostgres
import Logging

/// Where reports and guardrail measurements read (docs/operations.md, "A read replica"): the
/// replica of `AVIARY_DATABASE_REPLICA_URL` while its replay lag is under
/// `AVIARY_REPLICA_MAX_LAG`, else — or when it does not answer — the primary. Writes never go
/// to the replica.
struct ReportSource: Sendable {
    enum Place: String, Sendable {
        case primary, replica
    }

    let primary: AviaryDatabase
    let replica: AviaryDatabase?
    let maxLag: Double
    let logger: Logger

    /// How long the lag check may take before the replica is taken as unreachable.
    static let lagDeadline: Duration = .seconds(1)

    /// The replica's lag, measured now; nil without a replica, or when it does not answer in
    /// time or cannot tell.
    func replicaLag() async -> Double? {
        guard let replica else { return nil }
        do {
            return try await QueryDeadline.within(Self.lagDeadline) { try await replica.replayLag() }
        } catch {
            logger.debug("the read replica did not answer", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            return nil
        }
    }

    /// A report's aggregates, with where they came from and the replica's lag (nil without
    /// one, or when it did not answer). A replica that fails midway is left for the primary.
    func aggregate(
        experiment: ExperimentDefinition, metrics: [Metric], query: ReportQuery
    ) async throws -> (aggregates: ReportRepository.Aggregates, place: Place, lag: Double?) {
        let lag = await replicaLag()
        if let replica, let lag, lag < maxLag {
            do {
                return (try await replica.reports.aggregate(experiment: experiment, metrics: metrics, query: query), .replica, lag)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("the read replica failed a report; reading the primary", metadata: ["error": "\(String(reflecting: error).prefix(300))"])
            }
        }
        return (try await primary.reports.aggregate(experiment: experiment, metrics: metrics, query: query), .primary, lag)
    }
}
