#!/usr/bin/env python3
"""Generates Tests/AviaryCoreTests/Fixtures/statistics.json, the reference values for the Swift
statistics code (Sources/AviaryCore/Statistics), from SciPy/NumPy with fixed seeds.

Multiple-testing corrections come from statsmodels' multipletests (holm, fdr_bh). Sequential
tests and CUPED come from gbstats 0.8.0 (GrowthBook's engine): SequentialTwoSidedTTest and
RegressionAdjustedStatistic with TwoSidedTTest, on absolute differences (scripts/test installs
gbstats without its numpy<2 and pandas<2 pins, which are for modules not imported here).
Distribution values come from scipy.stats and are cross-checked against mpmath at 50 digits;
where SciPy itself is off (deep tails it underflows), the mpmath value is stored and the entry
says "source": "mpmath". Welch cases come from stats.ttest_ind(treatment, control,
equal_var=False); ratio (delta-method) cases from the formula in REFERENCES.md written
independently here with NumPy. Re-run after changing a case:

    python3 scripts/stats-fixtures.py
"""

import json
import math
import pathlib

import mpmath
import numpy as np
import scipy
import statsmodels
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
import gbstats
from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, RegressionAdjustedStatistic, SampleMeanStatistic

mpmath.mp.dps = 50
OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/AviaryCoreTests/Fixtures/statistics.json"
Z95 = 1.959963984540054
worst = {}  # largest scipy-vs-mpmath relative disagreement per family, printed at the end


def rel(a, b):
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    if a == b:
        return 0.0
    return float(abs(a - b) / max(abs(a), abs(b)))


def pick(family, scipy_value, exact, tol=1e-13):
    """SciPy's value unless it disagrees with the 50-digit value by more than tol."""
    exact_f = float(exact)
    if not math.isfinite(scipy_value):
        worst[family] = math.inf
        return exact_f, "mpmath"
    err = rel(scipy_value, exact_f)
    worst[family] = max(worst.get(family, 0.0), err)
    if err > tol:
        return exact_f, "mpmath"
    return float(scipy_value), "scipy"


def entry(values, source):
    if source != "scipy":
        values["source"] = source
    return values


# ---------------------------------------------------------------- normal
def mp_norm_sf(x):
    return mpmath.erfc(mpmath.mpf(x) / mpmath.sqrt(2)) / 2


def normal_cases():
    xs = [-37, -30, -20, -10, -8, -5, -3, -2, -1.5, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 1.959963984540054, 2, 3, 5,
          8, 10, 20, 30, 37]
    out = []
    for x in xs:
        cdf, s1 = pick("normal.cdf", stats.norm.cdf(x), mp_norm_sf(-x))
        sf, s2 = pick("normal.sf", stats.norm.sf(x), mp_norm_sf(x))
        out.append(entry({"x": x, "cdf": cdf, "sf": sf}, s1 if s1 != "scipy" else s2))
    return out


def mp_norm_ppf(p):
    p = mpmath.mpf(p)
    guess = stats.norm.ppf(float(p))
    return mpmath.findroot(lambda z: mp_norm_sf(-z) - p, mpmath.mpf(guess), tol=mpmath.mpf(10) ** -45)


def normal_ppf_cases():
    ps = [1e-300, 1e-200, 1e-100, 1e-50, 1e-20, 1e-10, 1e-5, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6,
          0.75, 0.9, 0.975, 0.99, 0.999, 1 - 1e-6, 1 - 1e-10, 1 - 1e-16]
    out = []
    for p in ps:
        x, src = pick("normal.ppf", stats.norm.ppf(p), mp_norm_ppf(p) if p != 0.5 else 0)
        out.append(entry({"p": p, "x": x}, src))
    return out


# ---------------------------------------------------------------- Student t
T_DFS = [1, 2, 2.5, 5, 10, 30, 1000]


def mp_t_tail(x, df):
    """P(T > |x|)."""
    x, df = mpmath.mpf(x), mpmath.mpf(df)
    if x == 0:
        return mpmath.mpf(1) / 2
    return mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + x * x), regularized=True) / 2


def mp_t_cdf(x, df):
    tail = mp_t_tail(x, df)
    return tail if x < 0 else 1 - tail


def mp_t_isf(q, df):
    """The t > 0 with P(T > t) = q, solved in log t so huge quantiles (10^299) converge."""
    q = mpmath.mpf(q)
    guess = -stats.t.ppf(float(q), df)
    if not math.isfinite(guess) or guess <= 0:
        guess = (float(q) * df * math.pi) ** (-1 / df)
    f = lambda s: mpmath.log(mp_t_tail(mpmath.exp(s), df)) - mpmath.log(q)
    return mpmath.exp(mpmath.findroot(f, mpmath.log(guess), tol=mpmath.mpf(10) ** -40))


def t_cases():
    xs = [-50, -20, -10, -5, -3, -2, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 2, 3, 5, 10, 20, 50, 100, 1e3, 1e5, 1e10]
    out = []
    for df in T_DFS:
        # Deep tails: the |t| at which the one-sided tail is 1e-300 (and 1e-100, 1e-200).
        deep = [float(mp_t_isf(q, df)) for q in (1e-100, 1e-200, 1e-300)]
        for x in xs + deep + [-d for d in deep]:
            exact_cdf = mp_t_cdf(x, df)
            exact_sf = mp_t_cdf(-x, df)
            cdf, s1 = pick("t.cdf", stats.t.cdf(x, df), exact_cdf, tol=1e-12)
            sf, s2 = pick("t.sf", stats.t.sf(x, df), exact_sf, tol=1e-12)
            if cdf == 0 or sf == 0:
                continue  # beyond double range; not a meaningful fixture
            out.append(entry({"df": df, "x": x, "cdf": cdf, "sf": sf}, s1 if s1 != "scipy" else s2))
    return out


def t_ppf_cases():
    ps = [1e-300, 1e-100, 1e-20, 1e-10, 1e-5, 1e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.95,
          0.975, 0.99, 0.999, 1 - 1e-10]
    out = []
    for df in T_DFS:
        for p in ps:
            if p == 0.5:
                exact = mpmath.mpf(0)
            elif p < 0.5:
                exact = -mp_t_isf(p, df)
            else:
                exact = mp_t_isf(mpmath.mpf(1) - mpmath.mpf(p), df)
            x, src = pick("t.ppf", stats.t.ppf(p, df), exact, tol=1e-12)
            out.append(entry({"df": df, "p": p, "x": x}, src))
    return out


# ---------------------------------------------------------------- chi-square
def chi2_cases():
    xs = [0, 1e-5, 0.01, 0.1, 0.5, 1, 2, 3, 5, 10, 20, 50, 100, 500, 1000]
    out = []
    for df in [1, 2, 3, 10]:
        for x in xs:
            exact = mpmath.gammainc(mpmath.mpf(df) / 2, mpmath.mpf(x) / 2, mpmath.inf, regularized=True)
            sf, src = pick("chi2.sf", stats.chi2.sf(x, df), exact)
            if sf == 0:
                continue
            out.append(entry({"df": df, "x": x, "sf": sf}, src))
    return out


def chisquare_cases():
    cases = [
        ([5000, 5000], [0.5, 0.5]),
        ([5100, 4900], [0.5, 0.5]),
        ([1000, 1200], [50, 50]),
        ([480, 520, 1000], [1, 1, 2]),
        ([10, 20, 30, 40], [0.25, 0.25, 0.25, 0.25]),
        ([3, 7], [0.5, 0.5]),
        ([100000, 101000], [0.5, 0.5]),
        ([1000, 2000], [0.5, 0.5]),
        ([905, 95], [0.9, 0.1]),
        ([333, 341, 326], [1, 1, 1]),
        ([50, 0, 50], [0.5, 0, 0.5]),
    ]
    out = []
    for observed, proportions in cases:
        f_obs = np.array(observed, dtype=float)
        props = np.array(proportions, dtype=float)
        keep = (f_obs > 0) | (props > 0)  # a zero-share, zero-count cell carries nothing
        f_exp = f_obs.sum() * (props[keep] / props[keep].sum())
        r = stats.chisquare(f_obs[keep], f_exp)
        out.append({"observed": observed, "proportions": proportions,
                    "statistic": float(r.statistic), "pvalue": float(r.pvalue), "df": int(keep.sum() - 1)})
    return out


# ---------------------------------------------------------------- Welch
def exact_sums(values):
    """n, Σx, Σx² correctly rounded (math.fsum), as an exact SQL numeric aggregate would give."""
    return [len(values), math.fsum(values), math.fsum(v * v for v in values)]


def welch_cases():
    rng = np.random.default_rng(20240611)
    r4 = lambda a: np.round(a, 4)
    cases = [
        ("n=2 each", r4(rng.normal(10, 2, 2)), r4(rng.normal(11, 2, 2)), True),
        ("n=3 each", r4(rng.normal(10, 2, 3)), r4(rng.normal(12, 3, 3)), True),
        ("n=2 vs 50", r4(rng.normal(5, 1, 2)), r4(rng.normal(5.5, 1, 50)), True),
        ("unequal variances", r4(rng.normal(0, 1, 30)), r4(rng.normal(1, 10, 40)), True),
        ("5 vs 5000", r4(rng.normal(3, 0.5, 5)), r4(rng.normal(3.2, 2, 5000)), True),
        ("ratings n=10000", rng.integers(1, 6, 10_000).astype(float),
         np.clip(rng.integers(1, 6, 10_000) + (rng.random(10_000) < 0.03), 1, 5).astype(float), True),
        ("large n normal", np.round(rng.normal(100, 15, 10_000), 2), np.round(rng.normal(100.4, 16, 10_000), 2), True),
        ("proportions", (rng.random(1000) < 0.10).astype(float), (rng.random(1000) < 0.12).astype(float), True),
        ("near-zero variance", 5 + 1e-9 * rng.standard_normal(20), r4(rng.normal(5, 0.1, 20)), False),
        ("control constant", np.full(10, 3.0), r4(rng.normal(3.5, 1, 12)), True),
        ("large mean small spread", 1e6 + r4(rng.normal(0, 1, 200)), 1e6 + r4(rng.normal(0.3, 1, 200)), False),
        ("identical", np.array([1.0, 2, 3, 4]), np.array([1.0, 2, 3, 4]), True),
        ("huge effect", r4(rng.normal(0, 1, 1000)), r4(rng.normal(1.5, 1, 1000)), True),
        ("negative control mean", r4(rng.normal(-2, 1, 25)), r4(rng.normal(-1.5, 1, 25)), True),
    ]
    out = []
    # Doubles hold a mean of 10^6 only to ~1.2e-10, so for that case any two implementations
    # (NumPy's pairwise sum, a compensated sum) differ by ~5e-10 in delta and ~5e-9 in p.
    loose = {"large mean small spread": 1e-8}
    for name, control, treatment, sums_ok in cases:
        r = stats.ttest_ind(treatment, control, equal_var=False)
        ci = r.confidence_interval(0.95)
        delta = float(np.mean(treatment) - np.mean(control))
        se = float(np.sqrt(np.var(treatment, ddof=1) / len(treatment) + np.var(control, ddof=1) / len(control)))
        exact_p = 2 * mp_t_tail(float(r.statistic), float(r.df))
        worst["welch.pvalue"] = max(worst.get("welch.pvalue", 0.0), rel(r.pvalue, exact_p))
        assert r.pvalue > 0, name  # an underflowed p-value checks nothing
        out.append({
            "name": name, "control": control.tolist(), "treatment": treatment.tolist(),
            "control_sums": exact_sums(control.tolist()), "treatment_sums": exact_sums(treatment.tolist()),
            "sums_ok": sums_ok, "rtol": loose.get(name, 1e-9),
            "delta": delta, "relative_lift": delta / float(np.mean(control)), "se": se,
            "statistic": float(r.statistic), "pvalue": float(r.pvalue), "df": float(r.df),
            "ci": [float(ci.low), float(ci.high)], "chance": float(stats.norm.cdf(r.statistic)),
        })
    return out


# ---------------------------------------------------------------- delta method
def ratio_group(num, den):
    n = len(num)
    mx, my = num.mean(), den.mean()
    vx, vy = num.var(ddof=1), den.var(ddof=1)
    cov = np.cov(num, den, ddof=1)[0, 1]
    var = (vx / my**2 - 2 * mx * cov / my**3 + mx**2 * vy / my**4) / n
    sums = [n, math.fsum(num), math.fsum(den), math.fsum(num * num), math.fsum(den * den), math.fsum(num * den)]
    return float(num.sum() / den.sum()), float(var), sums


def ratio_cases():
    rng = np.random.default_rng(7)
    out = []
    specs = [
        ("error rate", 2000, 0.010, 2000, 0.013, 20),
        ("small groups", 3, 0.2, 4, 0.3, 5),
        ("clicks per view", 500, 0.05, 800, 0.05, 3),
        ("big", 5000, 0.02, 5000, 0.021, 50),
    ]
    for name, n1, p1, n2, p2, lam in specs:
        groups = []
        for n, p in ((n1, p1), (n2, p2)):
            den = rng.poisson(lam, n).astype(float) + 1
            num = rng.binomial(den.astype(int), p).astype(float)
            groups.append((num, den))
        (cn, cd), (tn, td) = groups
        r1, v1, s1 = ratio_group(cn, cd)
        r2, v2, s2 = ratio_group(tn, td)
        delta = r2 - r1
        se = math.sqrt(v1 + v2)
        z = delta / se
        out.append({
            "name": name,
            "control": {"num": cn.tolist(), "den": cd.tolist(), "sums": s1, "ratio": r1, "variance": v1},
            "treatment": {"num": tn.tolist(), "den": td.tolist(), "sums": s2, "ratio": r2, "variance": v2},
            "delta": delta, "relative_lift": delta / r1, "se": se, "statistic": z,
            "pvalue": float(2 * stats.norm.sf(abs(z))), "ci": [delta - Z95 * se, delta + Z95 * se],
            "chance": float(stats.norm.cdf(z)),
        })
    return out


# ---------------------------------------------------------------- quantiles
def quantile_cases():
    rng = np.random.default_rng(99)
    samples = [
        [42.0],
        [1.0, 2.0],
        [3.0, 1.0, 2.0, 10.0, 7.0],
        [5.0, 5.0, 5.0, 1.0, 9.0, 9.0],
        np.round(rng.lognormal(5, 1, 101), 3).tolist(),
        np.round(rng.normal(0, 1, 1000), 6).tolist(),
    ]
    qs = [0, 0.01, 0.1, 0.25, 0.3, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1]
    return [{"values": s, "q": qs, "expected": [float(np.quantile(np.array(s), q, method="linear")) for q in qs]}
            for s in samples]


def multipletests_cases():
    rng = np.random.default_rng(2026)
    families = [
        [0.01],
        [0.04, 0.01, 0.03],
        [0.5, 0.5, 0.5, 0.01],          # ties
        [1.0, 0.2, 1.0, 0.04],          # p = 1
        [0.0, 1e-12, 0.049, 0.051, 0.9],
        [0.02, 0.02, 0.02, 0.02],
        rng.uniform(0, 1, 8).round(6).tolist(),
        rng.uniform(0, 0.1, 20).tolist(),
        np.concatenate([rng.uniform(0, 0.001, 5), rng.uniform(0, 1, 25)]).tolist(),
    ]
    cases = []
    for p in families:
        case = {"p": [float(x) for x in p]}
        for name, method in (("holm", "holm"), ("bh", "fdr_bh")):
            case[name] = [float(x) for x in multipletests(p, method=method)[1]]
        cases.append(case)
    return cases


def mde_cases():
    """The detectable effect in standard errors: x with Φ(x − z) + Φ(−x − z) = power. statsmodels
    solves for the standardized effect d of two samples, x = d·sqrt(1 / (1/n1 + 1/n2)) (which
    does not depend on n), but only to its root finder's tolerance (within about 1e-5 relative); the
    root is also found with mpmath at 50 digits, and that is the reference."""
    cases = []
    for alpha, power, n1, n2 in ((0.05, 0.8, 100, 100), (0.05, 0.8, 37, 5000), (0.05, 0.9, 1000, 1200), (0.01, 0.8, 50, 60),
                                 (0.1, 0.5, 20, 20), (0.05, 0.95, 1_000_000, 999_000)):
        d = NormalIndPower().solve_power(effect_size=None, nobs1=n1, alpha=alpha, power=power, ratio=n2 / n1, alternative="two-sided")
        z = mp_norm_ppf(1 - mpmath.mpf(alpha) / 2)
        exact = mpmath.findroot(lambda x: mpmath.ncdf(x - z) + mpmath.ncdf(-x - z) - mpmath.mpf(power), 2.8)
        cases.append({"alpha": alpha, "power": power, "n1": n1, "n2": n2, "multiple": float(exact),
                      "statsmodels": float(d * math.sqrt(1 / (1 / n1 + 1 / n2)))})
    return cases


# ---------------------------------------------------------------- gbstats
def gb_test(a, b, tuning):
    """gbstats' test of b against a on absolute differences: sequential with `tuning`, else Welch."""
    if tuning is None:
        return TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute"))
    return SequentialTwoSidedTTest(a, b, SequentialConfig(difference_type="absolute", sequential_tuning_parameter=tuning))


def gb_result(test):
    ci = [float(x) for x in test.confidence_interval]
    return {"delta": float(test.point_estimate), "ci": ci, "p": float(test.p_value)}


def sample_mean(values):
    return SampleMeanStatistic(n=len(values), sum=math.fsum(values), sum_squares=math.fsum(values * values))


def sequential_cases():
    """Means, counts and proportions (Welch's inputs: n, mean, variance as gbstats computes them)
    and ratios (the delta method's moments), n from 2 to 10^6, several tunings."""
    rng = np.random.default_rng(1405)
    cases = []
    sizes = [(2, 2), (3, 5), (20, 25), (300, 280), (5_000, 5_100), (100_000, 99_000), (1_000_000, 1_000_000)]
    for i, (na, nb) in enumerate(sizes):
        for tuning in (5000, 100, 1e5, 1):
            shift = [0.0, 0.05, 0.3][i % 3] if tuning != 1 else 2.0
            a, b = rng.normal(1.0, 2.0, na), rng.normal(1.0 + shift, 2.0, nb)
            sa, sb = sample_mean(a), sample_mean(b)
            test = gb_test(sa, sb, tuning)
            cases.append({"kind": "mean", "tuning": tuning,
                          "a": {"n": na, "mean": float(sa.mean), "variance": float(sa.variance)},
                          "b": {"n": nb, "mean": float(sb.mean), "variance": float(sb.variance)}, **gb_result(test)})
    for na, nb, pa, pb in ((40, 50, 0.1, 0.2), (10_000, 10_000, 0.10, 0.102), (1_000_000, 1_000_000, 0.3, 0.3005)):
        xa, xb = int(rng.binomial(na, pa)), int(rng.binomial(nb, pb))
        sa, sb = ProportionStatistic(n=na, sum=xa), ProportionStatistic(n=nb, sum=xb)
        test = gb_test(sa, sb, 5000)
        cases.append({"kind": "proportion", "tuning": 5000, "a": {"n": na, "sum": xa}, "b": {"n": nb, "sum": xb}, **gb_result(test)})
    for na, nb, tuning in ((30, 40, 5000), (2_000, 2_100, 5000), (50_000, 50_000, 1000)):
        def group(n, lift):
            d = rng.poisson(3, n).astype(float) + 1
            m = d * rng.gamma(2.0, 0.5 * lift, n)
            stat = RatioStatistic(n=n, m_statistic=sample_mean(m), d_statistic=sample_mean(d),
                                  m_d_sum_of_products=math.fsum(m * d))
            return stat, {"n": n, "numerator_mean": float(stat.m_statistic.mean), "denominator_mean": float(stat.d_statistic.mean),
                          "numerator_variance": float(stat.m_statistic.variance),
                          "denominator_variance": float(stat.d_statistic.variance), "covariance": float(stat.covariance)}
        (sa, ja), (sb, jb) = group(na, 1.0), group(nb, 1.04)
        cases.append({"kind": "ratio", "tuning": tuning, "a": ja, "b": jb, **gb_result(gb_test(sa, sb, tuning))})
    return cases


def cuped_cases():
    """Per-unit (post, pre) pairs in two groups; gbstats' RegressionAdjustedStatistic with its
    pooled θ, then TwoSidedTTest or SequentialTwoSidedTTest. Inputs are the pairs' moments
    (means, sample variances, sample covariance), as Aviary's reports have them."""
    rng = np.random.default_rng(2013)
    cases = []

    def moments(post, pre):
        n = len(post)
        return {"n": n, "post_mean": float(np.mean(post)), "pre_mean": float(np.mean(pre)),
                "post_variance": float(np.var(post, ddof=1)), "pre_variance": float(np.var(pre, ddof=1)),
                "covariance": float(np.cov(post, pre, ddof=1)[0, 1])}

    def statistic(post, pre, proportion):
        if proportion:
            p, q = ProportionStatistic(n=len(post), sum=float(post.sum())), ProportionStatistic(n=len(pre), sum=float(pre.sum()))
        else:
            p, q = sample_mean(post), sample_mean(pre)
        return RegressionAdjustedStatistic(n=len(post), post_statistic=p, pre_statistic=q,
                                           post_pre_sum_of_products=math.fsum(post * pre), theta=0)

    def add(name, groups, proportion, tuning):
        (a_post, a_pre), (b_post, b_pre) = groups
        sa, sb = statistic(a_post, a_pre, proportion), statistic(b_post, b_pre, proportion)
        test = gb_test(sa, sb, tuning)
        adjusted = isinstance(test.stat_a, RegressionAdjustedStatistic)
        case = {"name": name, "kind": "proportion" if proportion else "sum", "tuning": tuning,
                "a": moments(a_post, a_pre), "b": moments(b_post, b_pre),
                "theta": float(test.stat_a.theta) if adjusted else 0.0,
                "adjusted_means": [float(test.stat_a.mean), float(test.stat_b.mean)],
                "adjusted_variances": [float(test.stat_a.variance), float(test.stat_b.variance)], **gb_result(test)}
        cases.append(case)

    for n, lift, tuning in ((50, 0.3, None), (2_000, 0.05, None), (2_000, 0.05, 5000), (200_000, 0.01, None), (200_000, 0.01, 20_000)):
        def group(size, effect):
            pre = rng.poisson(4, size).astype(float)
            post = rng.poisson(0.8 * pre + 1 + effect).astype(float)
            return post, pre
        add(f"counts n={n}", (group(n, 0), group(n + n // 10, lift)), False, tuning)
    for n, tuning in ((500, None), (40_000, 5000)):
        def binary(size, rate):
            pre = (rng.random(size) < 0.3).astype(float)
            post = (rng.random(size) < np.where(pre > 0, rate + 0.3, rate)).astype(float)
            return post, pre
        add(f"proportions n={n}", (binary(n, 0.2), binary(n, 0.22)), True, tuning)
    # No pre-exposure variance: gbstats falls back to the unadjusted test (θ = 0).
    zero = lambda size, mean: (rng.poisson(mean, size).astype(float), np.zeros(size))
    add("no pre-period", (zero(300, 2.0), zero(320, 2.2)), False, None)
    add("no pre-period, sequential", (zero(300, 2.0), zero(320, 2.2)), False, 5000)
    const = lambda size, rate: ((rng.random(size) < rate).astype(float), np.ones(size))
    add("constant pre-period, proportion", (const(400, 0.2), const(420, 0.25)), True, None)
    return cases


def main():
    fixtures = {
        "generator": f"scripts/stats-fixtures.py (scipy {scipy.__version__}, numpy {np.__version__}, "
                     f"mpmath {mpmath.__version__}, statsmodels {statsmodels.__version__}, gbstats {gbstats.__version__})",
        "normal": normal_cases(),
        "normal_ppf": normal_ppf_cases(),
        "t": t_cases(),
        "t_ppf": t_ppf_cases(),
        "chi2_sf": chi2_cases(),
        "chisquare": chisquare_cases(),
        "welch": welch_cases(),
        "ratio": ratio_cases(),
        "quantile": quantile_cases(),
        "multipletests": multipletests_cases(),
        "mde": mde_cases(),
        "sequential": sequential_cases(),
        "cuped": cuped_cases(),
    }
    # One case per line keeps diffs readable while the large samples stay compact.
    lines = ["{"]
    keys = list(fixtures)
    for i, key in enumerate(keys):
        value = fixtures[key]
        comma = "," if i < len(keys) - 1 else ""
        if isinstance(value, list):
            body = ",\n".join("  " + json.dumps(item, separators=(",", ":"), allow_nan=False) for item in value)
            lines.append(f"{json.dumps(key)}: [\n{body}\n]{comma}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    json.loads(OUT.read_text())  # the file must parse
    for key in ("normal", "normal_ppf", "t", "t_ppf", "chi2_sf"):
        for e in fixtures[key]:
            if e.get("source") == "mpmath":
                print("  from mpmath:", key, e)
    for family, err in sorted(worst.items()):
        print(f"scipy vs mpmath, max relative difference {family}: {err:.2e}")
    mp_count = sum(1 for v in fixtures.values() if isinstance(v, list) for e in v
                   if isinstance(e, dict) and e.get("source") == "mpmath")
    print(f"{mp_count} entries taken from mpmath; wrote {OUT} ({OUT.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
