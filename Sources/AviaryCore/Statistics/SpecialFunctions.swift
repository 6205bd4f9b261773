import Foundation

/// Log-beta and the regularized incomplete beta and gamma functions behind the t and χ²
/// distributions (Numerical Recipes `betai`/`betacf`, `gammp`/`gammq`, with modified Lentz).
enum SpecialFunctions {
    /// Relative tolerance at which a series or continued fraction stops.
    static let epsilon = Double.ulpOfOne
    /// Stand-in for 0 in Lentz's method, so no division by zero can happen.
    static let tiny = Double.leastNormalMagnitude / Double.ulpOfOne
    /// A safety cap: the expansions are only used where they converge in O(√max(a, b)) terms,
    /// a few hundred at most for the arguments the t and χ² code passes.
    static let maxIterations = 100_000

    /// log B(a, b) = lgamma(a) + lgamma(b) − lgamma(a + b).
    ///
    /// When one argument is large, `lgamma(big) − lgamma(big + small)` cancels catastrophically
    /// (lgamma(5·10⁹) ≈ 10¹¹), so that difference comes from Stirling's series instead.
    static func logBeta(_ a: Double, _ b: Double) -> Double {
        let big = max(a, b), small = min(a, b)
        return lgamma(small) + lgammaDifference(big, small)
    }

    /// lgamma(x) − lgamma(x + s). For x ≥ 100 from Stirling's series, with the leading terms
    /// rearranged so that nothing of size x is subtracted.
    private static func lgammaDifference(_ x: Double, _ s: Double) -> Double {
        if x < 100 { return lgamma(x) - lgamma(x + s) }
        func correction(_ z: Double) -> Double {
            let z2 = z * z
            return (1.0 / 12 - (1.0 / 360 - 1 / (1260 * z2)) / z2) / z
        }
        return s - (x - 0.5) * log1p(s / x) - s * log(x + s) + correction(x) - correction(x + s)
    }

    /// I_x(a, b) given log x and log(1 − x), so callers can pass arguments whose x itself would
    /// underflow (the t tail at |t| ≈ 10³⁰⁰ has x ≈ 10⁻⁶⁰⁰). Whichever of I and 1 − I is the
    /// smaller is summed directly, so a small result keeps its relative accuracy.
    static func regularizedBeta(a: Double, b: Double, logX: Double, logY: Double) -> Double {
        if logX == -.infinity { return 0 }
        if logY == -.infinity { return 1 }
        let x = exp(logX), y = exp(logY)
        let directRegion = x < (a + 1) / (a + b + 2)
        // Near x = 1 with large a the continued fraction's terms nearly cancel (relative error
        // growing like ε·a: 10⁻⁸ at ν = 10⁹), so the asymptotic expansion takes over there.
        if directRegion, a >= 15, b <= 1, x > 0.7, let w = betaLargeA(a: a, b: b, logX: logX) {
            return w
        }
        let front = exp(a * logX + b * logY - logBeta(a, b))
        if directRegion {
            return front * betaContinuedFraction(a: a, b: b, x: x, y: y) / a
        }
        return 1 - front * betaContinuedFraction(a: b, b: a, x: y, y: x) / b
    }

    /// NR `betacf`: the continued fraction for I_x(a, b), evaluated by modified Lentz.
    private static func betaContinuedFraction(a: Double, b: Double, x: Double, y: Double) -> Double {
        let qab = a + b, qap = a + 1, qam = a - 1
        var c = 1.0
        // 1 − (a + b)x/(a + 1); for x near 1 rewritten with y = 1 − x, as the direct form
        // cancels there to a relative error of ~a·ε.
        var d = nonzero(x > 0.5 ? (1 - b + qab * y) / qap : 1 - qab * x / qap)
        d = 1 / d
        var h = d
        for m in 1...maxIterations {
            let m = Double(m), m2 = 2 * m
            var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
            d = 1 / nonzero(1 + aa * d)
            c = nonzero(1 + aa / c)
            h *= d * c
            aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
            d = 1 / nonzero(1 + aa * d)
            c = nonzero(1 + aa / c)
            let delta = d * c
            h *= delta
            if abs(delta - 1) <= epsilon { break }
        }
        return h
    }

    /// I_x(a, b) for large a and b ≤ 1 by the asymptotic expansion BGRAT of DiDonato & Morris
    /// (ACM TOMS 708, 1992) in incomplete gamma functions; nil when it breaks down.
    private static func betaLargeA(a: Double, b: Double, logX: Double) -> Double? {
        let bm1 = b - 1
        let nu = a + bm1 / 2
        let z = -nu * logX
        guard b * z > 0 else { return nil }
        let logR = b * log(z) - z - lgamma(b)  // r = zᵇ e⁻ᶻ / Γ(b)
        let u = exp(logR - lgammaDifference(a, b) - b * log(nu))  // r Γ(a + b) / (Γ(a) νᵇ)
        let r = exp(logR)
        if u == 0 { return 0 }
        guard r > 0 else { return nil }
        let q = b == 0.5 ? erfc(z.squareRoot()) : regularizedGamma(a: b, x: z).q
        let v = 0.25 / (nu * nu), t2 = 0.25 * logX * logX
        var j = q / r, sum = j, t = 1.0, cn = 1.0, n2 = 0.0
        var c = [Double](repeating: 0, count: 30), d = c
        for n in 0..<30 {
            let bp2n = b + n2
            j = (bp2n * (bp2n + 1) * j + (z + bp2n + 1) * t) * v
            n2 += 2
            t *= t2
            cn /= n2 * (n2 + 1)
            c[n] = cn
            var s = 0.0, coefficient = b - Double(n + 1)
            for i in 0..<n {
                s += coefficient * c[i] * d[n - i - 1]
                coefficient += b
            }
            d[n] = bm1 * cn + s / Double(n + 1)
            let dj = d[n] * j
            sum += dj
            guard sum > 0 else { return nil }
            if abs(dj) <= epsilon * sum { break }
        }
        return u * sum
    }

    /// Regularized lower incomplete gamma P(a, x) and upper Q(a, x) = 1 − P, each summed
    /// directly in the region where it is the smaller one (NR `gser` below a + 1, `gcf` above).
    static func regularizedGamma(a: Double, x: Double) -> (p: Double, q: Double) {
        if x <= 0 { return (0, 1) }
        if x == .infinity { return (1, 0) }
        let logFront = a * log(x) - x - lgamma(a)
        if x < a + 1 {
            var term = 1 / a, sum = term, ap = a
            for _ in 0..<maxIterations {
                ap += 1
                term *= x / ap
                sum += term
                if abs(term) <= abs(sum) * epsilon { break }
            }
            let p = min(1, sum * exp(logFront))
            return (p, 1 - p)
        }
        var bb = x + 1 - a
        var c = 1 / tiny
        var d = 1 / bb
        var h = d
        for i in 1...maxIterations {
            let an = -Double(i) * (Double(i) - a)
            bb += 2
            d = 1 / nonzero(an * d + bb)
            c = nonzero(bb + an / c)
            let delta = d * c
            h *= delta
            if abs(delta - 1) <= epsilon { break }
        }
        let q = min(1, exp(logFront) * h)
        return (1 - q, q)
    }

    private static func nonzero(_ v: Double) -> Double { abs(v) < tiny ? tiny : v }
}
