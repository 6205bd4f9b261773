import Hummingbird

/// After a successful configuration write, reloads this replica's snapshot before answering,
/// so whoever made the change sees it at once here; other replicas follow through NOTIFY.
struct ReloadAfterWriteMiddleware<Context: RequestContext>: RouterMiddleware {
    let feed: ConfigFeed

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let response = try await next(request, context)
        if request.method != .get, request.method != .head, (200..<300).contains(response.status.code) {
            await feed.reload()
        }
        return response
    }
}
