"""A report's numbers recomputed from the events sent for each unit, with numpy and SciPy — an
implementation independent of the server's — for the report tests."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def unit_value(kind: str, metric: dict, events: list[dict]) -> float | None | tuple[float, float]:
    def of(t: str) -> list[float]:
        return [e["value"] for e in events if e["type"] == t]
    if kind == "count":
        return float(len(of(metric["event"])))
    if kind == "sum":
        return float(sum(of(metric["event"])))
    if kind == "mean":
        values = of(metric["event"])
        return float(np.mean(values)) if values else None
    if kind == "proportion":
        return 1.0 if any(v == metric["where"]["eq"] for v in of(metric["event"])) else 0.0
    if kind == "ratio":
        return float(sum(of(metric["numerator"]))), float(sum(of(metric["denominator"])))
    raise AssertionError(kind)


def delta_method(control: list[tuple[float, float]], treatment: list[tuple[float, float]]) -> dict:
    def summary(pairs):
        x = np.array([p[0] for p in pairs]); y = np.array([p[1] for p in pairs])
        n = len(x); mx, my = x.mean(), y.mean()
        cov = np.cov(x, y, ddof=1)
        r = mx / my
        var = (cov[0, 0] / my**2 - 2 * mx * cov[0, 1] / my**3 + mx**2 * cov[1, 1] / my**4) / n
        return r, var
    (rc, vc), (rt, vt) = summary(control), summary(treatment)
    se = math.sqrt(vc + vt)
    z = (rt - rc) / se
    return {"mean": rt, "control_mean": rc, "delta": rt - rc, "p_value": 2 * stats.norm.sf(abs(z)),
            "ci95": [rt - rc - stats.norm.ppf(0.975) * se, rt - rc + stats.norm.ppf(0.975) * se],
            "chance_to_beat_control": stats.norm.cdf(z)}


def close(actual, expected, what: str) -> None:
    assert actual is not None, f"{what}: null, expected {expected}"
    assert math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-9), f"{what}: {actual} != {expected}"


def check_group(group: dict, control_units: dict[str, list[dict]], units: dict[str, list[dict]], where: str, *,
                metrics: dict[str, dict], control: str) -> None:
    """One report group against the numbers computed here from the events sent for each unit:
    `units` are the group's units with their counted events, `control_units` the control
    group's."""
    is_control = group["variant"] == control
    assert group["units"] == len(units), where
    assert group["events"] == sum(len(v) for v in units.values()), where
    for key, metric in metrics.items():
        got = group["metrics"][key]
        what = f"{where} {key}"
        assert got["kind"] == metric["kind"], what
        if metric["kind"] == "quantile":
            values = [e["value"] for v in units.values() for e in v if e["type"] == metric["event"]]
            assert got["n"] == len(values), what
            close(got["mean"], float(np.quantile(values, metric["q"])), what)
            continue
        if metric["kind"] == "ratio":
            pairs = [unit_value("ratio", metric, v) for v in units.values()]
            assert got["n"] == len(pairs), what
            if is_control:
                close(got["mean"], sum(p[0] for p in pairs) / sum(p[1] for p in pairs), what)
                continue
            control_pairs = [unit_value("ratio", metric, v) for v in control_units.values()]
            expected = delta_method(control_pairs, pairs)
            for field in ("mean", "delta", "p_value", "chance_to_beat_control"):
                close(got[field], expected[field], f"{what}.{field}")
            close(got["ci95"][0], expected["ci95"][0], f"{what}.ci95")
            close(got["ci95"][1], expected["ci95"][1], f"{what}.ci95")
            continue
        values = [x for x in (unit_value(metric["kind"], metric, v) for v in units.values()) if x is not None]
        assert got["n"] == len(values), what
        close(got["mean"], float(np.mean(values)), f"{what}.mean")
        close(got["stddev"], float(np.std(values, ddof=1)), f"{what}.stddev")
        if is_control:
            for field in ("delta", "relative_lift", "ci95", "p_value", "chance_to_beat_control"):
                assert got[field] is None, f"{what}.{field} of the control"
            continue
        control = [x for x in (unit_value(metric["kind"], metric, v) for v in control_units.values()) if x is not None]
        test = stats.ttest_ind(values, control, equal_var=False)
        ci = test.confidence_interval(0.95)
        delta = float(np.mean(values) - np.mean(control))
        se = math.sqrt(np.var(values, ddof=1) / len(values) + np.var(control, ddof=1) / len(control))
        close(got["delta"], delta, f"{what}.delta")
        close(got["relative_lift"], delta / float(np.mean(control)), f"{what}.relative_lift")
        close(got["p_value"], float(test.pvalue), f"{what}.p_value")
        close(got["ci95"][0], float(ci.low), f"{what}.ci95[0]")
        close(got["ci95"][1], float(ci.high), f"{what}.ci95[1]")
        close(got["chance_to_beat_control"], float(stats.norm.cdf(delta / se)), f"{what}.chance_to_beat_control")
