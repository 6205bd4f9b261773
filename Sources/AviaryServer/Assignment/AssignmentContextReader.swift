import AviaryCore
import Foundation
import HTTPTypes
import Hummingbird

/// Builds an `AssignmentContext` from a `GET` request exactly as docs/api.md ("Assignment")
/// lays out: headers, cookies and query. Values are bounded so a request cannot make the
/// context large.
enum AssignmentContextReader {
    static let cookieName = "aviary_id"
    static let maxValueLength = AssignmentContext.maxValueLength
    static let maxAttributes = AssignmentContext.maxAttributes
    static let attrHeaderPrefix = "x-aviary-attr-"

    struct Result {
        var context: AssignmentContext
        /// Set when the request had no `aviary_id` cookie and one was minted.
        var mintedAnonymousID: String?
    }

    static func read(_ request: Request) -> Result {
        var attributes: [String: Scalar] = [:]
        func set(_ name: String, _ value: String) {
            guard attributes.count < maxAttributes || attributes[name] != nil else { return }
            attributes[name] = .string(String(value.prefix(maxValueLength)))
        }

        var anonymousID: String?
        request.headers.forEachCookie { name, value in
            if name == cookieName, !value.isEmpty { anonymousID = String(value.prefix(maxValueLength)) }
            set("cookie." + name, value)
        }

        let query = request.uri.queryParameters
        for (key, value) in query {
            let k = String(key)
            if k.hasPrefix("attr."), k.count > 5 { set(normalize(k.dropFirst(5)), String(value)) }
        }
        for field in request.headers {
            let name = field.name.canonicalName.lowercased()
            if name.hasPrefix(attrHeaderPrefix), name.count > attrHeaderPrefix.count {
                set(normalize(name.dropFirst(attrHeaderPrefix.count)), field.value)
            }
        }
        if let region = request.headers[.aviaryRegion] { set("region", region) }
        if let country = request.headers[.cfIPCountry] ?? request.headers[.cloudFrontViewerCountry] ?? request.headers[.countryCode] {
            set("country", country)
        }
        if let agent = request.headers[.userAgent] { set("user_agent", agent) }

        var userID = request.headers[.aviaryUser] ?? query.get("user")
        if let u = userID { userID = u.isEmpty ? nil : String(u.prefix(maxValueLength)) }
        var minted: String?
        if anonymousID == nil {
            minted = UUID().uuidString.lowercased()
            anonymousID = minted
        }
        return Result(context: AssignmentContext(userID: userID, anonymousID: anonymousID, attributes: attributes), mintedAnonymousID: minted)
    }

    /// `App-Version` → `app_version`.
    static func normalize(_ name: Substring) -> String {
        String(name.lowercased().map { $0 == "-" ? "_" : $0 })
    }

    static func setCookie(_ id: String) -> String {
        "\(cookieName)=\(id); Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly"
    }
}

extension HTTPField.Name {
    static let aviaryUser = Self("X-Aviary-User")!
    static let aviaryRegion = Self("X-Aviary-Region")!
    static let cfIPCountry = Self("CF-IPCountry")!
    static let cloudFrontViewerCountry = Self("CloudFront-Viewer-Country")!
    static let countryCode = Self("X-Country-Code")!
    static let aviaryAssignments = Self("X-Aviary-Assignments")!
    static let aviaryTruncated = Self("X-Aviary-Truncated")!
}
