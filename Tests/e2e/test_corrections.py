"""Multiple-testing corrections end to end (docs/statistics.md): a three-variant experiment
with Benjamini–Hochberg, whose adjusted p-values equal statsmodels' on the p-values SciPy gives
for the test's own per-unit data — from every event and from the report state."""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests

from aviary_e2e import Api, Server, admin, create_experiment, expect, poll_until
from conftest import psql

KEY = "three-models"
VARIANTS = ("gpt-4", "qwen-max", "claude")
METRICS = {"rating": {"kind": "mean", "event": "answer_rating"}, "messages": {"kind": "count", "event": "message"},
           "spend": {"kind": "sum", "event": "purchase"}}


def test_benjamini_hochberg_equals_statsmodels(aviary: Server, aviary_factory, database_url: str, client_key: str) -> None:
    api = admin(aviary)
    for key, body in METRICS.items():
        expect(api.put(f"/v1/metrics/{key}", json=body), 201, 200)
    create_experiment(aviary, {
        "key": KEY, "variants": [{"key": v, "value": v} for v in VARIANTS], "control": "gpt-4",
        "rules": [{"name": "everyone", "serve": {"split": [{"variant": "gpt-4", "weight": 34}, {"variant": "qwen-max", "weight": 33},
                                                           {"variant": "claude", "weight": 33}]}}],
        # spend is a guardrail only: reported, never corrected.
        "metrics": {"primary": ["rating"], "secondary": ["messages"], "guardrails": ["spend"]},
        "analysis": {"correction": "bh"}})
    client = Api(aviary, client_key)
    rng = random.Random(14)
    variant_of, values = {}, {}
    ts = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    events = []
    for i in range(150):
        unit = f"cu-{i}"
        variant = expect(client.get(f"/v1/assign/{KEY}", headers={"X-Aviary-User": unit}), 200).json()["assignments"][KEY]["variant"]
        variant_of[unit] = variant
        lift = {"gpt-4": 0.0, "qwen-max": 0.3, "claude": 0.6}[variant]
        ratings = [min(5, max(1, round(rng.gauss(3.5 + lift, 1)))) for _ in range(rng.randint(1, 3))]
        messages = rng.randint(0, 4 + (1 if variant == "claude" else 0))
        spend = [round(rng.uniform(0, 5), 2) for _ in range(rng.randint(0, 2))]
        values[unit] = {"rating": float(np.mean(ratings)), "messages": float(messages), "spend": float(sum(spend))}
        events += [{"id": str(uuid.uuid4()), "type": "answer_rating", "user_id": unit, "ts": ts, "value": r} for r in ratings]
        events += [{"id": str(uuid.uuid4()), "type": "message", "user_id": unit, "ts": ts} for _ in range(messages)]
        events += [{"id": str(uuid.uuid4()), "type": "purchase", "user_id": unit, "ts": ts, "value": s} for s in spend]
    for i in range(0, len(events), 500):
        expect(client.post("/v1/events", json=events[i:i + 500]), 200)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{KEY}/report").json()["exposed_units"].values()) == len(variant_of), timeout=10)

    # The detectable effect in standard errors at α = 0.05, power 0.8, both tails counted.
    z = stats.norm.ppf(0.975)
    multiple = optimize.brentq(lambda x: stats.norm.cdf(x - z) + stats.norm.cdf(-x - z) - 0.8, 0, 10, xtol=1e-15, rtol=1e-15)
    mdes = {}
    # Welch p-values of every treatment's primary and secondary metric, in report order.
    keys, pvalues = [], []
    for variant in VARIANTS[1:]:
        for metric in ("rating", "messages"):
            treatment = [values[u][metric] for u, v in variant_of.items() if v == variant]
            control = [values[u][metric] for u, v in variant_of.items() if v == "gpt-4"]
            keys.append((variant, metric))
            pvalues.append(float(stats.ttest_ind(treatment, control, equal_var=False).pvalue))
            se = math.sqrt(np.var(treatment, ddof=1) / len(treatment) + np.var(control, ddof=1) / len(control))
            mdes[(variant, metric)] = multiple * se
    expected = dict(zip(keys, multipletests(pvalues, method="fdr_bh")[1]))

    def check(server: Server, where: str) -> None:
        report = expect(admin(server).get(f"/v1/experiments/{KEY}/report"), 200).json()
        for group in report["groups"]:
            for metric, result in group["metrics"].items():
                got = result["adjusted_p_value"]
                if group["variant"] == "gpt-4" or metric == "spend":
                    assert got is None, (where, group["variant"], metric, got)
                    assert (result["mde"] is None) == (group["variant"] == "gpt-4"), (where, group["variant"], metric)
                    continue
                want = expected[(group["variant"], metric)]
                assert math.isclose(result["mde"], mdes[(group["variant"], metric)], rel_tol=1e-9), (where, metric, result["mde"])
                assert math.isclose(result["p_value"], pvalues[keys.index((group["variant"], metric))], rel_tol=1e-9), (where, metric)
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (where, group["variant"], metric, got, want)

    check(aviary, "from every event")
    refresher = aviary_factory(AVIARY_REPORT_REFRESH="0.2")
    poll_until(lambda: psql(database_url, f"SELECT count(*) FROM report_states WHERE experiment_key = '{KEY}'") == "1", timeout=20)
    check(refresher, "from the report state")
    csv = expect(admin(aviary).get(f"/v1/experiments/{KEY}/report.csv"), 200).text
    assert csv.splitlines()[0].endswith(",adjusted_p_value")
