import Synchronization
import Testing

@testable import AviaryServer

/// A probe answers at its deadline even when its query ignores cancellation (a query on a
/// connection the database just cut); `run`, for writes, waits for it.
@Suite struct DatabaseDeadlineTests {
    final class Flag: Sendable {
        private let value = Mutex(false)
        var isSet: Bool { value.withLock { $0 } }
        func set() { value.withLock { $0 = true } }
    }

    @Test func aProbeDoesNotWaitForAQueryThatIgnoresCancellation() async throws {
        let released = Flag()
        // Never ends on cancellation, only when released (by the test, or a watchdog at 30 s).
        let stuck: @Sendable () async throws -> Int = {
            while !released.isSet { try? await Task.sleep(for: .milliseconds(20)) }
            return 1
        }
        let watchdog = Task { try? await Task.sleep(for: .seconds(30)); released.set() }
        defer { watchdog.cancel() }
        await #expect(throws: APIError.self) { try await DatabaseDeadline.probe(limit: .milliseconds(100), stuck) }
        let waited = released.isSet
        #expect(!waited, "the probe waited for the query")
        released.set()
        #expect(try await DatabaseDeadline.probe(limit: .seconds(5)) { 7 } == 7)
    }
}
