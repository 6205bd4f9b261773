import AviaryCore
import Foundation
import Hummingbird

extension Response {
    static func json(_ value: JSON, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(data: value.canonicalData())))
    }

    /// A revisioned object, read or written: the object with `ETag: "<revision>"`, and `201` with
    /// `Location` when it was created there.
    static func revisioned(_ value: JSON, revision: Int, createdAt location: String? = nil) -> Response {
        var headers: HTTPFields = [.eTag: "\"\(revision)\""]
        if let location { headers[.location] = location }
        return json(value, status: location == nil ? .ok : .created, headers: headers)
    }
}

extension Request {
    /// Reads a JSON body: `application/json` (or `+json`) only, at most 1 MiB, nesting bounded.
    /// - Parameter optional: an empty body reads as `nil` instead of failing.
    func decodeJSON(context: some RequestContext, optional: Bool = false) async throws -> JSON? {
        let contentType = headers[.contentType]
        let buffer = try await readBody(upTo: RequestLimits.maxBodyBytes)
        if optional, buffer.readableBytes == 0 { return nil }
        guard let contentType, Self.isJSON(contentType) else {
            throw APIError(.unsupportedMediaType, code: "unsupported_media_type", message: "send the body as application/json, not \(sentContentType)")
        }
        do {
            return try JSON.parse(buffer.readableBytesView)
        } catch {
            if case .unstorable = error { throw APIError.invalidRequest([error.issue()]) }
            throw APIError.invalidJSON(error.reason)
        }
    }

    /// Reads a `PATCH` body: a JSON merge patch (RFC 7396) sent as
    /// `application/merge-patch+json` or plain `application/json`; other types (a JSON Patch's
    /// `application/json-patch+json`, say) are `415`.
    func decodeMergePatch(context: some RequestContext) async throws -> JSON {
        let type = headers[.contentType].map(Self.mediaType)
        guard type == "application/merge-patch+json" || type == "application/json" else {
            throw APIError(
                .unsupportedMediaType, code: "unsupported_media_type", message: "send a JSON merge patch as application/merge-patch+json, not \(sentContentType)")
        }
        return try await decodeJSON(context: context)!
    }

    /// The body, at most `limit` bytes. A larger one is `413`; the rest of it is read and
    /// thrown away first (up to 64 MiB or 5 s, as nginx's lingering close), so that a client
    /// still sending reads the answer instead of a closed connection.
    func readBody(upTo limit: Int) async throws -> ByteBuffer {
        var buffer = ByteBuffer()
        var excess = 0
        let drainUntil = ContinuousClock.now + .seconds(5)
        do {
            for try await chunk in body {
                if excess == 0, buffer.readableBytes + chunk.readableBytes <= limit {
                    var chunk = chunk
                    buffer.writeBuffer(&chunk)
                    continue
                }
                excess += chunk.readableBytes
                if excess > 64 << 20 || ContinuousClock.now > drainUntil { break }
            }
        } catch {
            if excess == 0 { throw error }
        }
        if excess > 0 { throw APIError.tooLarge }
        return buffer
    }

    static func isJSON(_ contentType: String) -> Bool {
        let media = mediaType(contentType)
        return media == "application/json" || (media.hasPrefix("application/") && media.hasSuffix("+json"))
    }

    /// The media type of a `Content-Type`, lower-cased, without parameters:
    /// `application/json` of `Application/JSON; charset=utf-8`.
    static func mediaType(_ contentType: String) -> String {
        contentType.split(separator: ";", maxSplits: 1).first.map { $0.trimmedOWS.lowercased() } ?? ""
    }

    /// The request's `Content-Type` as an error message names it: quoted (at most 100
    /// characters), or "without a Content-Type".
    var sentContentType: String {
        headers[.contentType].map { "\"\($0.prefix(100))\"" } ?? "without a Content-Type"
    }

    /// `If-Match: "3"` (also `W/"3"` or `3`) as a revision; `nil` when absent.
    func ifMatchRevision() throws -> Int? {
        guard let raw = headers[.ifMatch] else { return nil }
        var s = Substring(raw.trimmedOWS)
        if s.hasPrefix("W/") { s = s.dropFirst(2) }
        if s.hasPrefix("\""), s.hasSuffix("\""), s.count >= 2 { s = s.dropFirst().dropLast() }
        guard let revision = Int(s), revision >= 0 else {
            throw APIError(.badRequest, code: "invalid_request", message: "If-Match must be a revision in quotes, such as \"3\"", details: [
                ValidationIssue(path: "If-Match", message: "\"\(raw.prefix(40))\" is not a revision")
            ])
        }
        return revision
    }
}
