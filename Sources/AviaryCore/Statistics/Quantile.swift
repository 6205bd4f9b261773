import Foundation

/// Sample quantiles with linear interpolation between order statistics: Hyndman & Fan type 7,
/// numpy's default `np.quantile(values, q, method="linear")`.
public enum Quantile {
    /// The q-quantile of `values` (any order); nil when empty, when q is outside [0, 1], or
    /// when a value is NaN.
    public static func linear(_ values: [Double], _ q: Double) -> Double? {
        guard !values.contains(where: \.isNaN) else { return nil }
        return linear(sorted: values.sorted(), q)
    }

    /// The q-quantile of values already sorted ascending (not checked).
    ///
    /// Index h = (n − 1)·q between x[⌊h⌋] and x[⌊h⌋ + 1], interpolated with numpy's `_lerp`:
    /// from below when the fraction is < ½ and from above otherwise, which keeps the result
    /// monotone and bit-identical to numpy.
    public static func linear(sorted: [Double], _ q: Double) -> Double? {
        guard !sorted.isEmpty, q >= 0, q <= 1 else { return nil }
        let h = Double(sorted.count - 1) * q
        let lower = min(Int(h.rounded(.down)), sorted.count - 1)
        let upper = min(lower + 1, sorted.count - 1)
        let fraction = h - Double(lower)
        let a = sorted[lower], b = sorted[upper]
        let difference = b - a
        return fraction >= 0.5 ? b - difference * (1 - fraction) : a + difference * fraction
    }
}
