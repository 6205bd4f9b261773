import AviaryCore
import Hummingbird

/// Per-request state: the authenticated key, once `AuthMiddleware` has found it.
public struct AviaryRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var apiKey: APIKey?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
    }

    /// Request bodies are bounded at 1 MiB (SPEC: larger → 413).
    public var maxUploadSize: Int { RequestLimits.maxBodyBytes }
}

public enum RequestLimits {
    public static let maxBodyBytes = 1 << 20
}
