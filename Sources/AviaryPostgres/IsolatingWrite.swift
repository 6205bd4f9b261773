import PostgresNIO

/// Batched writes that one bad row cannot stop: a batch the database refuses for its content is
/// halved until each refused row stands alone, and the rest is written (docs/operations.md,
/// "What is refused, dropped and counted").
public enum IsolatingWrite {
    /// Writes `batch` with `write` and answers the rows the database refused for their content
    /// (`isRefusedContent`); everything else is written. Any other error — the database
    /// unavailable, a deadline, a serialization failure — is thrown as it is for the caller's
    /// retry, and parts written before it stay written: `write` must be safe to repeat.
    /// A batch with k refused rows among n costs about 2·k·log₂(n) writes more.
    public static func write<Row: Sendable>(_ batch: [Row], _ write: ([Row]) async throws -> Void) async throws -> [Row] {
        guard !batch.isEmpty else { return [] }
        do {
            try await write(batch)
            return []
        } catch where isRefusedContent(error) {
            if batch.count == 1 { return batch }
            let middle = batch.count / 2
            let first = try await Self.write(Array(batch[..<middle]), write)
            return first + (try await Self.write(Array(batch[middle...]), write))
        }
    }

    /// Whether PostgreSQL refused the statement for the data it carried, so that sending it again
    /// can never succeed: a data exception (SQLSTATE class 22: text with U+0000, a value out of
    /// range), an integrity constraint (23) or a program limit (54: an index entry too large).
    public static func isRefusedContent(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23") || state.hasPrefix("54")
    }
}
