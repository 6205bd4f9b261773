@testable import AviaryPostgres
import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite struct MigratorTests {
    let migrations: [Migration]

    init() throws {
        migrations = try Migration.load(from: TestDatabase.migrationsDirectory)
    }

    @Test func appliesEveryMigrationOnceAndIsIdempotent() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            let first = try await database.migrator.migrate(migrations)
            #expect(first == migrations.map(\.version))
            let second = try await database.migrator.migrate(migrations)
            #expect(second.isEmpty)
            #expect(try await database.migrator.pending(migrations).isEmpty)
            #expect(await database.isReady(migrations: migrations))
        } }
    }

    @Test func notReadyBeforeMigrating() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            #expect(await !database.isReady(migrations: migrations))
        } }
    }

    @Test func refusesAnEditedMigration() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            try await database.migrator.migrate(migrations)
            var tampered = migrations
            tampered[0].sql += "\n-- edited after it was applied\n"
            await #expect(throws: MigrationError.checksumMismatch(version: tampered[0].version, name: tampered[0].name)) {
                try await database.migrator.migrate(tampered)
            }
            #expect(await !database.isReady(migrations: tampered))
        } }
    }

    @Test func refusesAHistoryWithAMissingFile() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            let extra = Migration(version: 9999, name: "later", sql: "CREATE TABLE later_table (id int)")
            try await database.migrator.migrate(migrations + [extra])
            await #expect(throws: MigrationError.unknownApplied(version: 9999, name: "later")) {
                try await database.migrator.migrate(migrations)
            }
        } }
    }

    @Test func refusesOutOfOrderFiles() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            let late = Migration(version: 9999, name: "later", sql: "SELECT 1")
            try await database.migrator.migrate(migrations + [late])
            let inserted = Migration(version: 9000, name: "between", sql: "SELECT 1")
            await #expect(throws: MigrationError.outOfOrder(version: 9000, name: "between", lastApplied: 9999)) {
                try await database.migrator.migrate(migrations + [inserted, late])
            }
        } }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await TestDatabase.withFresh { url in try await TestDatabase.withRunning(url) { database in
            let broken = Migration(version: 9999, name: "broken", sql: "CREATE TABLE half_done (id int);\nSELECT * FROM no_such_table;")
            await #expect(throws: (any Error).self) { try await database.migrator.migrate(migrations + [broken]) }
            let rows = try await database.client.query("SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'")
            for try await count in rows.decode(Int.self) { #expect(count == 0) }
            #expect(try await database.migrator.pending(migrations + [broken]).map(\.version) == [9999])
        } }
    }

    @Test func concurrentRunsInOneProcessApplyEachMigrationOnce() async throws {
        let migrations = self.migrations
        let results = try await TestDatabase.withFresh { url in
            try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<4 {
                    group.addTask { try await TestDatabase.withRunning(url) { try await $0.migrator.migrate(migrations) } }
                }
                return try await group.reduce(into: [[Int]]()) { $0.append($1) }
            }
        }
        #expect(results.flatMap { $0 }.sorted() == migrations.map(\.version))
    }

    @Test func loadsFilesInOrderAndRejectsBadNames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aviary-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try "SELECT 2".write(to: dir.appendingPathComponent("0002_second.sql"), atomically: true, encoding: .utf8)
        try "SELECT 1".write(to: dir.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
        try "ignored".write(to: dir.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        #expect(try Migration.load(from: dir).map(\.name) == ["first", "second"])
        try "SELECT 3".write(to: dir.appendingPathComponent("third.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.badFileName("third.sql")) { try Migration.load(from: dir) }
    }
}
