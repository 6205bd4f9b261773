/// JSON Merge Patch (RFC 7396), what `PATCH` takes (docs/api.md, "Changing one field").
extension JSON {
    /// This document with `patch` merged in, as RFC 7396 section 2 defines it: an object patch
    /// sets each of its members (recursively for objects), `null` removes a member, and any
    /// other patch — an array, a string, a number — replaces the whole target.
    public func applying(mergePatch patch: JSON) -> JSON {
        guard case .object(let members) = patch else { return patch }
        var target: [String: JSON] = [:]
        if case .object(let existing) = self { target = existing }
        for (name, value) in members {
            if value.isNull {
                target[name] = nil
            } else {
                target[name] = (target[name] ?? .null).applying(mergePatch: value)
            }
        }
        return .object(target)
    }
}
