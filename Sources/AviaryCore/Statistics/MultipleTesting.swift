/// Adjusted p-values for a family of comparisons (docs/statistics.md, "Multiple testing"), as
/// statsmodels' `multipletests` computes them: Holm–Bonferroni (`holm`) controls the chance of
/// any false positive, Benjamini–Hochberg (`fdr_bh`) the expected share of false discoveries.
public enum MultipleTesting {
    public enum Method: String, Sendable, Hashable, CaseIterable {
        case holm, bh
    }

    /// The adjusted p-values of `p`, in the same order, each at most 1.
    public static func adjust(_ p: [Double], method: Method) -> [Double] {
        let m = p.count
        guard m > 0 else { return [] }
        let order = p.indices.sorted { p[$0] < p[$1] }
        var adjusted = [Double](repeating: 0, count: m)
        switch method {
        case .holm:
            // (m − i)·p₍ᵢ₎ for the i-th smallest (from 0), never below an earlier one.
            var running = 0.0
            for (i, index) in order.enumerated() {
                running = max(running, Double(m - i) * p[index])
                adjusted[index] = min(1, running)
            }
        case .bh:
            // m·p₍ᵢ₎/(i + 1), never above a later one.
            var running = Double.infinity
            for (i, index) in order.enumerated().reversed() {
                running = min(running, Double(m) * p[index] / Double(i + 1))
                adjusted[index] = min(1, running)
            }
        }
        return adjusted
    }
}
