import AviaryCore
import Testing

@testable import AviaryServer

/// Reloads run concurrently and may end in any order: the store keeps the newest-numbered one.
@Suite struct SnapshotStoreTests {
    @Test func aSlowOlderReloadDoesNotReplaceANewerOne() {
        let store = SnapshotStore()
        let older = store.nextReload(), newer = store.nextReload()
        #expect(newer > older)
        store.replace(with: ConfigSnapshot(revision: "new", experiments: [], cohorts: [], optedOut: []), reload: newer)
        store.replace(with: ConfigSnapshot(revision: "old", experiments: [], cohorts: [], optedOut: []), reload: older)
        #expect(store.snapshot.revision == "new")
        store.replace(with: ConfigSnapshot(revision: "newest", experiments: [], cohorts: [], optedOut: []), reload: store.nextReload())
        #expect(store.snapshot.revision == "newest" && store.isLoaded)
    }
}
