@testable import AviaryPostgres
import AviaryTestSupport
import Foundation
import PostgresNIO
import Testing

/// `aviary migrate` as an operator runs it: two processes started together on one database.
@Suite struct MigrateCommandTests {
    @Test func twoConcurrentRunsApplyEachMigrationOnce() async throws {
        let executable = try TestDatabase.aviaryExecutable
        let migrations = try Migration.load(from: TestDatabase.migrationsDirectory)
        try await TestDatabase.withFresh { url in
            let runs = try (0..<2).map { _ in try Self.start(executable, url: url) }
            for run in runs {
                run.process.waitUntilExit()
                let output = String(decoding: run.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                #expect(run.process.terminationStatus == 0, "aviary migrate failed: \(output)")
            }
            try await TestDatabase.withRunning(url) { database in
                let rows = try await database.client.query("SELECT version, count(*)::int FROM aviary_migrations GROUP BY version ORDER BY version")
                var versions: [Int] = []
                for try await (version, count) in rows.decode((Int, Int).self) {
                    #expect(count == 1)
                    versions.append(version)
                }
                #expect(versions == migrations.map(\.version))
            }
        }
    }

    @Test func refusesATamperedHistory() async throws {
        let executable = try TestDatabase.aviaryExecutable
        try await TestDatabase.withMigrated { url, database in
            try await database.client.query("UPDATE aviary_migrations SET checksum = 'tampered' WHERE version = 1")
            let run = try Self.start(executable, url: url)
            run.process.waitUntilExit()
            let output = String(decoding: run.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(run.process.terminationStatus != 0)
            #expect(output.contains("was changed after it was applied"), "\(output)")
        }
    }

    static func start(_ executable: URL, url: String) throws -> (process: Process, output: Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["migrate", "--directory", TestDatabase.migrationsDirectory.path]
        var env = ProcessInfo.processInfo.environment
        env["AVIARY_DATABASE_URL"] = url
        env["AVIARY_LOG_LEVEL"] = "warning"
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        return (process, pipe)
    }
}
