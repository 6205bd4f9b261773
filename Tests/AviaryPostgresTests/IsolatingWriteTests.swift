import AviaryCore
import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

@testable import AviaryPostgres

/// One row the database refuses for its content stops nothing else in its batch
/// (docs/operations.md, "What is refused, dropped and counted").
@Suite struct IsolatingWriteTests {
    @Test func poisonedExposuresAreSetApartAndTheRestIsWritten() async throws {
        try await TestDatabase.withMigrated { _, db in
            let at = Date()
            var batch = (0..<40).map { Exposure(experiment: "e\($0 % 3)", unit: "u\($0)", variant: "a", at: at) }
            // U+0000 is refused by PostgreSQL's text (22021); an entry over an index's size limit (54000).
            batch[7].unit = "evil\u{0}"
            // (Random text: repeated characters compress to fit.)
            batch[30].unit = (0..<300).map { _ in UUID().uuidString }.joined()
            batch[31].country = "\u{0}"
            var writes = 0
            let refused = try await IsolatingWrite.write(batch) { part in
                writes += 1
                try await db.exposures.record(part)
            }
            #expect(Set(refused.map(\.unit)) == [batch[7].unit, batch[30].unit, batch[31].unit])
            let stored = try await db.client.query("SELECT unit FROM exposures ORDER BY unit", logger: db.logger).values(String.self)
            #expect(Set(stored) == Set(batch.map(\.unit)).subtracting(refused.map(\.unit)))
            #expect(stored.count == 37)
            #expect(writes < 40)
        }
    }

    @Test func anUnavailableDatabaseIsThrownForTheCallersRetry() async throws {
        struct Down: Error {}
        await #expect(throws: Down.self) {
            _ = try await IsolatingWrite.write([1, 2, 3]) { _ in throw Down() }
        }
    }

    @Test func aBatchWithoutPoisonIsOneWrite() async throws {
        var writes: [[Int]] = []
        let refused = try await IsolatingWrite.write([1, 2, 3]) { writes.append($0) }
        #expect(refused.isEmpty && writes == [[1, 2, 3]])
    }
}
