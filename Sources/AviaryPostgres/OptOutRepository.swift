import AviaryCore
import Logging
import PostgresNIO

/// Units that asked to leave experiments. Every change notifies replicas, which reload within
/// a second.
public struct OptOutRepository: Sendable {
    let database: AviaryDatabase
    var logger: Logger { database.logger }

    public func optOut(units: [String]) async throws {
        try await database.transaction { connection in
            try await connection.query(
                "INSERT INTO opt_outs (unit) SELECT unnest(\(units)::text[]) ON CONFLICT (unit) DO NOTHING", logger: logger)
            try await notifyConfigChanged(on: connection, logger: logger, what: "opt_outs")
        }
    }

    public func optIn(units: [String]) async throws {
        try await database.transaction { connection in
            try await connection.query("DELETE FROM opt_outs WHERE unit = ANY(\(units)::text[])", logger: logger)
            try await notifyConfigChanged(on: connection, logger: logger, what: "opt_outs")
        }
    }
}
