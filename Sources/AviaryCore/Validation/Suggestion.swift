/// What an error about an unknown name offers instead: the nearest known name when one is close
/// enough to be a typo, else the known names when there are few (docs/api.md, "Errors").
public enum Suggestion {
    /// ` (did you mean "internal"?)`, ` (one of: a, b, c)`, or nothing.
    public static func hint(for name: String, among known: some Collection<String>, listUpTo limit: Int = 20) -> String {
        if let nearest = nearest(to: name, among: known) { return " (did you mean \"\(nearest)\"?)" }
        guard !known.isEmpty, known.count <= limit else { return "" }
        return " (one of: \(known.sorted().joined(separator: ", ")))"
    }

    /// The known name closest to `name` by edit distance (insertions, deletions, substitutions),
    /// when it is at most 2 edits and fewer than half of `name`'s characters away; ties go to the
    /// first in sorted order.
    public static func nearest(to name: String, among known: some Collection<String>) -> String? {
        let target = Array(name.lowercased())
        guard !target.isEmpty else { return nil }
        var best: (distance: Int, name: String)?
        for candidate in known.sorted() {
            let d = distance(target, Array(candidate.lowercased()))
            if d <= 2, d * 2 < target.count, d < (best?.distance ?? .max) { best = (d, candidate) }
        }
        return best?.name
    }

    /// Levenshtein distance, one row at a time.
    static func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        var current = previous
        for i in 1...a.count {
            current[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
