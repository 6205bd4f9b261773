import Foundation

/// Student's t distribution with real degrees of freedom ν > 0.
///
/// Tails come from the regularized incomplete beta function, P(T > |t|) = ½·I_x(ν/2, ½) with
/// x = ν/(ν + t²), summed directly (never as `1 - cdf`), so p-values keep their relative accuracy
/// down to 10⁻³⁰⁰. Non-positive or NaN degrees of freedom give NaN; ν = ∞ is the normal.
public enum StudentT {
    /// P(T ≤ t).
    public static func cdf(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !t.isNaN else { return .nan }
        let tail = upperTail(abs(t), df)
        return t < 0 ? tail : 1 - tail
    }

    /// P(T > t), computed directly in the upper tail.
    public static func sf(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !t.isNaN else { return .nan }
        let tail = upperTail(abs(t), df)
        return t > 0 ? tail : 1 - tail
    }

    /// P(|T| ≥ |t|), the two-sided p-value of a t statistic.
    public static func twoSidedPValue(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !t.isNaN else { return .nan }
        return min(1, 2 * upperTail(abs(t), df))
    }

    /// The density at t.
    public static func pdf(_ t: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, !t.isNaN else { return .nan }
        if df == .infinity { return Normal.pdf(t) }
        return exp(logPDF(abs(t), df))
    }

    /// The t with P(T ≤ t) = p; −∞ at 0, +∞ at 1, NaN outside [0, 1].
    ///
    /// Starts from a closed form (ν = 1, 2), the tail asymptote or a Cornish–Fisher expansion
    /// around the normal quantile, whichever fits better, then runs Newton on log P(T > t),
    /// guarded by a bisection bracket; converges to a few ulps of the exact quantile.
    public static func quantile(_ p: Double, degreesOfFreedom df: Double) -> Double {
        guard df > 0, p >= 0, p <= 1 else { return .nan }
        if p == 0 { return -.infinity }
        if p == 1 { return .infinity }
        if p == 0.5 { return 0 }
        if df == .infinity { return Normal.quantile(p) }
        // 1 − p is exact for p ≥ ½, so solving for the upper tail loses nothing.
        let t = upperQuantile(p < 0.5 ? p : 1 - p, df)
        return p < 0.5 ? -t : t
    }

    // MARK: - Internals

    /// P(T > t) for t ≥ 0.
    static func upperTail(_ t: Double, _ df: Double) -> Double {
        if df == .infinity { return Normal.sf(t) }
        if t == .infinity { return 0 }
        let (logX, logY) = betaArguments(t, df)
        return 0.5 * SpecialFunctions.regularizedBeta(a: df / 2, b: 0.5, logX: logX, logY: logY)
    }

    /// log x and log(1 − x) for x = ν/(ν + t²), from u = t²/ν without overflow at huge t.
    private static func betaArguments(_ t: Double, _ df: Double) -> (logX: Double, logY: Double) {
        let u = t * t / df
        if u == 0 { return (0, -.infinity) }
        if u.isFinite { return (-log1p(u), log(u) - log1p(u)) }
        // t² overflowed: log1p(u) = log u to within 1/u < 10⁻³⁰⁰.
        let logU = 2 * log(t) - log(df)
        return (-logU, 0)
    }

    /// log density at t ≥ 0: −½ log ν − log B(ν/2, ½) − (ν + 1)/2 · log(1 + t²/ν).
    static func logPDF(_ t: Double, _ df: Double) -> Double {
        let (logX, _) = betaArguments(t, df)
        return -0.5 * log(df) - SpecialFunctions.logBeta(df / 2, 0.5) + (df + 1) / 2 * logX
    }

    /// The t > 0 with P(T > t) = q, for 0 < q < ½.
    private static func upperQuantile(_ q: Double, _ df: Double) -> Double {
        func mismatch(_ t: Double) -> Double { logRatio(upperTail(t, df), q) }
        // Below one degree of freedom the tails are so heavy that deep quantiles pass 10³⁰⁸.
        if upperTail(.greatestFiniteMagnitude, df) > q { return .infinity }

        var candidates: [Double] = []
        if df == 1 { candidates.append(1 / tan(Double.pi * q)) }
        if df == 2 { candidates.append((1 - 2 * q) / (2 * q * (1 - q)).squareRoot()) }
        // Tail asymptote: 2q ≈ x^a / (a·B(a, ½)) with x = ν/(ν + t²) small.
        let a = df / 2
        let logX = (log(2 * q) + log(a) + SpecialFunctions.logBeta(a, 0.5)) / a
        if logX < 0 { candidates.append(exp(0.5 * (log(df) + log(-expm1(logX)) - logX))) }
        // Cornish–Fisher expansion around the normal quantile (Hill 1970).
        let z = Normal.inverseSF(q), z2 = z * z
        let g1 = z * (z2 + 1) / 4
        let g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
        let g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
        candidates.append(z + ((g3 / df + g2) / df + g1) / df)

        var t = candidates.filter { $0.isFinite && $0 > 0 }.min { abs(mismatch($0)) < abs(mismatch($1)) } ?? 1
        var low = 0.0, high = Double.infinity
        for _ in 0..<200 {
            let tail = upperTail(t, df)
            if tail > q { low = t } else { high = t }
            // Newton on h(t) = log P(T > t) − log q, with h'(t) = −pdf/tail kept in logs so
            // neither the density nor the tail needs to be representable on its own.
            var next = t + logRatio(tail, q) * exp(log(tail) - logPDF(t, df))
            if !(next > low && next < high) || !next.isFinite {
                // Outside the bracket: bisect it (geometrically, as it may span many decades).
                if high.isFinite {
                    next = low > 0 ? low * (high / low).squareRoot() : high / 2
                } else {
                    next = min(2 * t, .greatestFiniteMagnitude)
                }
            }
            if abs(next - t) <= 2 * Double.ulpOfOne * next || high - low <= 2 * Double.ulpOfOne * low {
                return next
            }
            t = next
        }
        return t
    }

    /// log(s/q) without overflow in the ratio.
    private static func logRatio(_ s: Double, _ q: Double) -> Double {
        let ratio = s / q
        return ratio.isFinite && ratio > 0 ? log(ratio) : log(s) - log(q)
    }
}
