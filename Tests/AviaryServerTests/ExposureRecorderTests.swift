import Testing

@testable import AviaryServer

/// The recorder writes changes of variant only: a unit served the variant last recorded for it
/// costs a lookup, and what it remembers is bounded by two generations.
struct ExposureRecorderTests {
    @Test func onlyChangesOfVariantAreNews() {
        var state = ExposureRecorder.State()
        func news(_ unit: Int, _ variant: Int) -> Bool { state.isChange(unit, variant) }
        #expect(news(1, 10))
        #expect(!news(1, 10) && !news(1, 10))
        #expect(news(1, 20))
        #expect(!news(1, 20))
        // Back to the first variant: a change again (the database keeps that variant's first time).
        #expect(news(1, 10))
        #expect(news(2, 10) && !news(2, 10))
    }

    @Test func twoGenerationsBoundWhatIsRemembered() {
        var state = ExposureRecorder.State(capacity: 3)
        func news(_ unit: Int, _ variant: Int) -> Bool { state.isChange(unit, variant) }
        for unit in 0..<3 { #expect(news(unit, 7)) }
        // Full: the fourth unit starts a new generation; the first three are still known.
        #expect(news(3, 7))
        #expect(state.recent.count == 1 && state.older.count == 3)
        // Seen again, an older unit moves to the recent generation without a write.
        #expect(!news(0, 7) && state.recent[0] == 7)
        #expect(news(4, 7))
        // The next rollover forgets the oldest generation: units 1 and 2 are news again.
        #expect(news(5, 7))
        #expect(state.recent.count == 1 && state.older.count == 3)
        #expect(news(1, 7) && !news(3, 7))
        #expect(state.recent.count + state.older.count <= 2 * state.capacity)
    }
}
