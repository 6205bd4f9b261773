import AviaryCore
import Testing

@testable import AviaryServer

/// Reloads run concurrently and may end in any order: the newest-numbered one is kept.
@Suite struct ReloadedTests {
    @Test func aSlowOlderReloadDoesNotReplaceANewerOne() async {
        let value = Reloaded("initial")
        #expect(value.value == "initial" && !value.isLoaded)
        let (gate, open) = AsyncStream<Void>.makeStream()
        let (numbered, markNumbered) = AsyncStream<Void>.makeStream()
        let slow = Task {
            await value.reload {
                markNumbered.yield()
                for await _ in gate { break }
                return "old"
            }
        }
        for await _ in numbered { break }  // the slow reload has taken its number and is reading
        await value.reload { "new" }
        #expect(value.value == "new" && value.isLoaded)
        open.yield()
        await slow.value
        #expect(value.value == "new")
        await value.reload { "newest" }
        #expect(value.value == "newest")
    }

    @Test func theSnapshotStoreServesWhatItsReloadRead() async {
        let store = SnapshotStore()
        #expect(!store.isLoaded)
        await store.reload { ConfigSnapshot(revision: "r1", experiments: [], cohorts: [], optedOut: []) }
        #expect(store.isLoaded && store.snapshot.revision == "r1" && store.prepared.snapshot.revision == "r1")
    }
}
