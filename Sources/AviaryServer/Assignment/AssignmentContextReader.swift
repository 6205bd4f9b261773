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
    /// Where `country` comes from, the first present.
    static let countryHeaders: [HTTPField.Name] = [.cfIPCountry, .cloudFrontViewerCountry, .countryCode]

    struct Result {
        var context: AssignmentContext
        /// Set when the request had no `aviary_id` cookie and one was minted.
        var mintedAnonymousID: String?
    }

    /// The context of `request`; `400 invalid_request` naming the header, cookie or query
    /// parameter when one holds text PostgreSQL cannot store (`StorableText`): its exposures
    /// would be refused with every other one in their batch.
    static func read(_ request: Request) throws -> Result {
        var attributes: [String: Scalar] = [:]
        var issues = IssueCollector()
        func bounded(_ value: String, from source: String) -> String {
            if !StorableText.isStorable(value) { issues.add(JSONPath.root[source], StorableText.nulProblem) }
            return StorableText.prefix(value, bytes: maxValueLength)
        }
        func set(_ name: String, _ value: String, from source: String) {
            set(name, bounded: bounded(value, from: source))
        }
        func set(_ name: String, bounded value: String) {
            guard attributes.count < maxAttributes || attributes[name] != nil else { return }
            attributes[name] = .string(value)
        }

        var anonymousID: String?
        request.headers.forEachCookie { name, value in
            let source = "cookie." + name
            let value = bounded(value, from: source)
            if name == cookieName, !value.isEmpty { anonymousID = value }
            set(source, bounded: value)
        }

        let query = request.uri.queryParameters
        for (key, value) in query {
            let k = String(key)
            if k.hasPrefix("attr."), k.count > 5 { set(normalize(k.dropFirst(5)), String(value), from: k) }
        }
        for field in request.headers {
            let name = field.name.canonicalName.lowercased()
            if name.hasPrefix(attrHeaderPrefix), name.count > attrHeaderPrefix.count {
                set(normalize(name.dropFirst(attrHeaderPrefix.count)), field.value, from: field.name.rawName)
            }
        }
        if let region = request.headers[.aviaryRegion] { set("region", region, from: HTTPField.Name.aviaryRegion.rawName) }
        for name in countryHeaders {
            if let country = request.headers[name] {
                set("country", country, from: name.rawName)
                break
            }
        }
        if let agent = request.headers[.userAgent] { set("user_agent", agent, from: HTTPField.Name.userAgent.rawName) }

        var userID: String?
        if let header = request.headers[.aviaryUser] {
            userID = bounded(header, from: HTTPField.Name.aviaryUser.rawName)
        } else if let parameter = query.get("user") {
            userID = bounded(parameter, from: "user")
        }
        if userID?.isEmpty == true { userID = nil }
        guard issues.isEmpty else { throw APIError.invalidRequest(issues.issues) }
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
