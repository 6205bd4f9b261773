import Foundation
import PostgresNIO

extension AviaryDatabase {
    /// How far this database, a streaming replica, is behind its primary, in seconds
    /// (docs/operations.md, "A read replica"): 0 when it has replayed everything it received
    /// (or is not a replica at all), else now − the commit time of the last transaction it
    /// replayed; nil when that is unknown (nothing replayed since it started).
    public func replayLag() async throws -> Double? {
        try await query(
            """
            SELECT CASE
                WHEN NOT pg_is_in_recovery() THEN 0
                WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
                ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
            END::float8
            """) { try await $0.value(Double.self) }
    }
}
