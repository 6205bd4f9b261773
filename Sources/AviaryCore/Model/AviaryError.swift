/// Domain errors. The server maps each to one HTTP status and error code, in one place.
public enum AviaryError: Error, Sendable, Equatable {
    /// The body is well-formed JSON but breaks the contract; `code` names what was being written.
    case invalid(code: String, issues: [ValidationIssue])
    case notFound(String)
    /// The write conflicts with stored state (an existing key, a cohort still in use, an archived experiment).
    case conflict(String, issues: [ValidationIssue] = [])
    /// A lifecycle action that the current status does not allow.
    case illegalTransition(String)
    /// `If-Match` was required and missing.
    case preconditionRequired(String)
    /// `If-Match` named an older revision.
    case preconditionFailed(current: Int)
    /// The stored object cannot be read, and only a repair may write it (`UnreadableObject`).
    case storedObjectUnreadable(String)
}
