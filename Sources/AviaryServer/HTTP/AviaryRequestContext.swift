import AviaryCore
import Hummingbird

/// Per-request state: the authenticated key, once `AuthMiddleware` has found it.
public struct AviaryRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var apiKey: APIKey?
    /// The dashboard session the request came with (`/ui` pages only).
    var dashboardSession: DashboardSession?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Request bodies are bounded at 1 MiB (docs/api.md: larger → 413).
    public var maxUploadSize: Int { RequestLimits.maxBodyBytes }

    /// The route's `{key}` naming an existing `kind` (`experiment`, `cohort`, `metric`): a key
    /// outside the key grammar names nothing, so it is a 404 before any lookup.
    func existingKey(of kind: String) throws -> String {
        let key = try parameters.require("key")
        // Echo what the user typed: the path parameter arrives percent-encoded.
        guard Key.isValid(key) else { throw AviaryError.notFound("\(kind) \"\((key.removingPercentEncoding ?? key).prefix(80))\" does not exist") }
        return key
    }
}

public enum RequestLimits {
    public static let maxBodyBytes = 1 << 20
}
