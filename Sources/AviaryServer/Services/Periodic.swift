import ServiceLifecycle

/// The loop of every periodic service: `tick` every `interval` (the first one at once when
/// `startingAtOnce`), until graceful shutdown or cancellation. Graceful shutdown does not cancel
/// services, so it ends the wait between ticks here; a tick in progress is never interrupted.
func everyInterval(_ interval: Duration, startingAtOnce: Bool = false, _ tick: () async -> Void) async {
    var first = startingAtOnce
    while !Task.isCancelled, !Task.isShuttingDownGracefully {
        if !first {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) } } catch { return }
        }
        first = false
        guard !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        await tick()
    }
}
