import AviaryCore
import HTTPTypes
import Hummingbird

/// The one renderer of an assignment answer (docs/api.md, "Assignment") — for `GET` and
/// `POST /v1/assign` and `/v1/assign/{key}` alike. Made once per snapshot: the
/// `X-Aviary-Variant-<key>` names, the `X-Aviary-Assignments` members and the JSON pieces of
/// every experiment and variant, so that answering builds no header name and parses nothing.
struct AssignmentAnswer: Sendable {
    /// By experiment position.
    let variantHeader: [HTTPField.Name?]
    /// By experiment position, then variant index: `key=variant` as RFC 8941 writes it, or nil
    /// for experiments whose key cannot be a dictionary key.
    let dictionaryMember: [[String]?]
    /// By experiment position: `"key":{"in_experiment":` of the JSON body.
    let bodyPrefix: [[UInt8]]
    /// By experiment position, then variant index: `,"value":…,"variant":"…"}` of the JSON body.
    let bodySuffix: [[[UInt8]]]

    init(_ snapshot: ConfigSnapshot) {
        variantHeader = snapshot.experiments.map { HTTPField.Name("X-Aviary-Variant-" + $0.key) }
        dictionaryMember = snapshot.experiments.map { experiment in
            guard Self.isDictionaryKey(experiment.key) else { return nil }
            return experiment.variants.map { experiment.key + "=" + Self.item($0.key) }
        }
        // Keys and variant keys follow the key grammar: nothing in them needs JSON escaping.
        bodyPrefix = snapshot.experiments.map { Array("\"\($0.key)\":{\"in_experiment\":".utf8) }
        bodySuffix = snapshot.experiments.map { experiment in
            experiment.variants.indices.map { v in
                Array(",\"value\":".utf8) + experiment.valueJSON[v] + Array(",\"variant\":\"\(experiment.variants[v].key)\"}".utf8)
            }
        }
    }

    /// The header budget of an answer for every experiment that no request narrowed
    /// (docs/api.md, "Assignment"): at most this many `X-Aviary-Variant-<key>` headers…
    static let maxVariantHeaders = 64
    /// …and at most this many bytes (`name: value` and CRLF) for them with
    /// `X-Aviary-Assignments`, so that the whole header block — with the cookie, CORS's
    /// `Access-Control-Expose-Headers` naming them and HTTP's own — stays within 8 KiB.
    static let maxAssignmentHeaderBytes = 4_096

    /// Body and headers: the assignments in JSON, `X-Aviary-Variant-<key>` per experiment and
    /// all of them as an RFC 8941 dictionary in `X-Aviary-Assignments`; `bodyless` answers 204
    /// with the headers only. With `headersWithinBudget` (an all-experiments answer) the
    /// headers stop at the first experiment that would exceed the budget above, and
    /// `X-Aviary-Truncated` says how many were left out of them (the body has every one).
    func response(_ assignments: [Assignment], context: AssignmentContext, mintedCookie: String?, bodyless: Bool, headersWithinBudget: Bool) -> Response {
        var headers = HTTPFields()
        headers.reserveCapacity(min(assignments.count, Self.maxVariantHeaders) + 6)
        headers[.cacheControl] = "no-store"
        if let mintedCookie { headers[.setCookie] = AssignmentContextReader.setCookie(mintedCookie) }
        var dictionary = ""
        // The `X-Aviary-Assignments: ` line with its CRLF, then each header line and member.
        var bytes = HTTPField.Name.aviaryAssignments.rawName.utf8.count + 4, variantHeaders = 0, left = 0
        for (i, a) in assignments.enumerated() {
            let position = a.experiment.position
            let header = variantHeader[position]
            let member = dictionaryMember[position]?[a.variantIndex]
            if headersWithinBudget {
                let cost = (header.map { $0.rawName.utf8.count + a.variantKey.utf8.count + 4 } ?? 0) + (member.map { $0.utf8.count + 2 } ?? 0)
                if variantHeaders + (header == nil ? 0 : 1) > Self.maxVariantHeaders || bytes + cost > Self.maxAssignmentHeaderBytes {
                    left = assignments.count - i
                    break
                }
                bytes += cost
            }
            if let header {
                headers.append(HTTPField(name: header, value: a.variantKey))
                variantHeaders += 1
            }
            if let member {
                if !dictionary.isEmpty { dictionary += ", " }
                dictionary += member
            }
        }
        if !dictionary.isEmpty { headers[.aviaryAssignments] = dictionary }
        if left > 0 { headers[.aviaryTruncated] = String(left) }
        if bodyless { return Response(status: .noContent, headers: headers) }

        var w = JSONWriter(capacity: 128 + assignments.count * 160)
        w.raw("{\"assignments\":{")
        for (i, a) in assignments.enumerated() {
            if i > 0 { w.raw(",") }
            let position = a.experiment.position
            w.raw(bodyPrefix[position])
            w.bool(a.inExperiment)
            w.raw(",\"reason\":")
            w.rawString(a.reason.description)
            w.raw(bodySuffix[position][a.variantIndex])
        }
        w.raw("},\"unit\":{\"anonymous_id\":")
        w.optionalString(context.anonymousID)
        w.raw(",\"user_id\":")
        w.optionalString(context.userID)
        w.raw("}}")
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: w.buffer))
    }

    /// RFC 8941 dictionary keys start with a lower-case letter or `*`; Aviary keys may start with
    /// a digit, and those experiments appear only in their `X-Aviary-Variant-<key>` header.
    static func isDictionaryKey(_ key: String) -> Bool {
        guard let first = key.utf8.first else { return false }
        return first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")
    }

    /// A variant key as an RFC 8941 item: a token when it starts with a letter (as a dictionary
    /// key must), else a string. The key grammar leaves nothing to escape in either.
    static func item(_ key: String) -> String {
        isDictionaryKey(key) ? key : "\"" + key + "\""
    }
}
