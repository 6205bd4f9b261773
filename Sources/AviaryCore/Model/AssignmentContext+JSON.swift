extension AssignmentContext {
    /// Attributes a context holds at most; longer values are cut at `maxValueLength` bytes
    /// from headers and refused beyond four times that from JSON (docs/api.md, "Assignment").
    public static let maxAttributes = 100
    public static let maxValueLength = 1_024

    /// An explicit context (`POST /v1/assign`'s `context`, OFREP's): `user_id`, `anonymous_id`
    /// and scalar attributes; nulls are absent. `unitField` (OFREP's `targetingKey`) also fills
    /// the units when they are not given. Problems go to `issues` under `path`.
    public init(json object: [String: JSON], at path: JSONPath, unitField: String? = nil, issues: inout IssueCollector) {
        self.init()
        if object.count > Self.maxAttributes + 3 {
            issues.add(path, "at most \(Self.maxAttributes) attributes")
            return
        }
        for (name, value) in object {
            let p = path[name]
            switch (name, value) {
            case (_, .null): continue
            case ("user_id", _): userID = Self.unit(value, p, &issues)
            case ("anonymous_id", _): anonymousID = Self.unit(value, p, &issues)
            case (_, .string(let s)):
                guard s.utf8.count <= 4 * Self.maxValueLength else {
                    issues.add(p, "is longer than \(4 * Self.maxValueLength) bytes")
                    continue
                }
                attributes[name] = .string(s)
            case (_, .number(let n)): attributes[name] = .number(n)
            case (_, .bool(let b)): attributes[name] = .bool(b)
            default: issues.add(p, "must be a string, number or boolean, not \(value.typeName)")
            }
        }
        if let unitField, let key = attributes.removeValue(forKey: unitField) {
            if key.text.utf8.count > Self.maxValueLength {
                issues.add(path[unitField], "must be at most \(Self.maxValueLength) bytes")
            } else {
                userID = userID ?? key.text
                anonymousID = anonymousID ?? key.text
            }
        }
    }

    /// A unit id: 1 to `maxValueLength` bytes, as an event's (exposures are indexed by unit, and
    /// PostgreSQL's indexes hold entries of at most about 2.7 kB).
    static func unit(_ value: JSON, _ path: JSONPath, _ issues: inout IssueCollector) -> String? {
        guard let s = issues.string(value, path) else { return nil }
        guard !s.isEmpty, s.utf8.count <= maxValueLength else {
            issues.add(path, "must be 1 to \(maxValueLength) bytes")
            return nil
        }
        return s
    }
}
