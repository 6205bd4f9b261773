"""Sequential testing and CUPED end to end (docs/statistics.md): reports of a real server equal
gbstats 0.8.0 — GrowthBook's engine — on the test's own per-unit data, from every event and from
the report state.

- A sequential experiment: SequentialTwoSidedTTest on absolute differences for a mean, a count,
  a proportion and (with the delta-method variance) a ratio metric.
- A CUPED experiment whose units sent events before they were first exposed, some inside the
  cuped_days window (the covariate) and some older (never counted):
  RegressionAdjustedStatistic with the pooled θ and TwoSidedTTest.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone

from gbstats.frequentist.tests import FrequentistConfig, SequentialConfig, SequentialTwoSidedTTest, TwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, RatioStatistic, RegressionAdjustedStatistic, SampleMeanStatistic

from aviary_e2e import Api, Server, admin, create_experiment, expect, poll_until, replace_experiment
from conftest import psql

CONTROL, TREATMENT = "gpt-4", "qwen-max"


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(type_: str, unit: str, ts: str, value: float | None = None) -> dict:
    e = {"id": str(uuid.uuid4()), "type": type_, "user_id": unit, "ts": ts}
    if value is not None:
        e["value"] = value
    return e


def send(client: Api, events: list[dict]) -> None:
    for i in range(0, len(events), 1000):
        expect(client.post("/v1/events", json=events[i:i + 1000]), 200)


def two_variant(key: str, metrics: list[str], analysis: dict) -> dict:
    return {"key": key, "variants": [{"key": CONTROL, "value": CONTROL}, {"key": TREATMENT, "value": TREATMENT}], "control": CONTROL,
            "rules": [{"name": "everyone", "serve": {"split": [{"variant": CONTROL, "weight": 50}, {"variant": TREATMENT, "weight": 50}]}}],
            "metrics": {"primary": metrics[:1], "secondary": metrics[1:]}, "analysis": analysis}


def assign(client: Api, key: str, units: list[str]) -> dict[str, str]:
    return {u: expect(client.get(f"/v1/assign/{key}", headers={"X-Aviary-User": u}), 200).json()["assignments"][key]["variant"]
            for u in units}


def sample_mean(values: list[float]) -> SampleMeanStatistic:
    return SampleMeanStatistic(n=len(values), sum=math.fsum(values), sum_squares=math.fsum(v * v for v in values))


def close(got, want, what: str) -> None:
    assert got is not None, f"{what}: null, expected {want}"
    assert abs(got - want) <= 1e-9 * abs(want) + 1e-12, f"{what}: {got} != {want}"


def check_comparison(result: dict, test, what: str) -> None:
    """The report's delta, interval and p-value against a gbstats test on absolute differences."""
    close(result["delta"], float(test.point_estimate), f"{what} delta")
    low, high = (float(x) for x in test.confidence_interval)
    width = high - low
    assert abs(result["ci95"][0] - low) <= 1e-9 * (abs(low) + width), (what, result["ci95"], low)
    assert abs(result["ci95"][1] - high) <= 1e-9 * (abs(high) + width), (what, result["ci95"], high)
    close(result["p_value"], float(test.p_value), f"{what} p")


def reports(aviary: Server, aviary_factory, database_url: str, key: str):
    """The report from every event, then from the report state (a server refreshing it)."""
    yield "from every event", expect(admin(aviary).get(f"/v1/experiments/{key}/report"), 200).json()
    refresher = aviary_factory(AVIARY_REPORT_REFRESH="0.2")
    poll_until(lambda: psql(database_url, f"SELECT count(*) FROM report_states WHERE experiment_key = '{key}'") == "1", timeout=20)
    yield "from the report state", expect(admin(refresher).get(f"/v1/experiments/{key}/report"), 200).json()


def test_a_sequential_report_is_gbstats(aviary: Server, aviary_factory, database_url: str, client_key: str) -> None:
    api, client = admin(aviary), Api(aviary, client_key)
    metrics = {"seq_rating": {"kind": "mean", "event": "answer_rating"}, "seq_messages": {"kind": "count", "event": "message"},
               "seq_thumbs": {"kind": "proportion", "event": "feedback", "where": {"eq": 1}},
               "seq_cost": {"kind": "ratio", "numerator": "llm_cost", "denominator": "message"}}
    for key, body in metrics.items():
        expect(api.put(f"/v1/metrics/{key}", json=body), 201, 200)
    key = "sequential-chat"
    create_experiment(aviary, two_variant(key, list(metrics), {"sequential": True, "sequential_tuning": 500}))
    units = [f"seq-{i}" for i in range(240)]
    variant_of = assign(client, key, units)
    rng = random.Random(10)
    ts = stamp(datetime.now(timezone.utc) + timedelta(seconds=1))
    per_unit, events = {}, []
    for u in units:
        lift = 0.4 if variant_of[u] == TREATMENT else 0.0
        ratings = [min(5, max(1, round(rng.gauss(3.4 + lift, 1)))) for _ in range(rng.randint(0, 2))]
        messages = rng.randint(0, 5)
        costs = [round(rng.uniform(0.001, 0.02 + lift / 100), 4) for _ in range(messages)]
        thumbs = rng.random() < 0.3 + lift / 4
        per_unit[u] = {"ratings": ratings, "messages": messages, "cost": math.fsum(costs), "thumbs": thumbs}
        events += [event("answer_rating", u, ts, r) for r in ratings]
        events += [event("message", u, ts) for _ in range(messages)]
        events += [event("llm_cost", u, ts, c) for c in costs]
        events.append(event("feedback", u, ts, 1 if thumbs else 0))
    send(client, events)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{key}/report").json()["exposed_units"].values()) == len(units), timeout=10)

    def statistic(variant: str, metric: str):
        group = [per_unit[u] for u in units if variant_of[u] == variant]
        if metric == "seq_rating":
            return sample_mean([sum(g["ratings"]) / len(g["ratings"]) for g in group if g["ratings"]])
        if metric == "seq_messages":
            return sample_mean([float(g["messages"]) for g in group])
        if metric == "seq_thumbs":
            return ProportionStatistic(n=len(group), sum=float(sum(g["thumbs"] for g in group)))
        numerators, denominators = [g["cost"] for g in group], [float(g["messages"]) for g in group]
        return RatioStatistic(n=len(group), m_statistic=sample_mean(numerators), d_statistic=sample_mean(denominators),
                              m_d_sum_of_products=math.fsum(n * d for n, d in zip(numerators, denominators)))

    config = SequentialConfig(difference_type="absolute", sequential_tuning_parameter=500)
    for where, report in reports(aviary, aviary_factory, database_url, key):
        treatment = next(g for g in report["groups"] if g["variant"] == TREATMENT)
        for metric in metrics:
            result = treatment["metrics"][metric]
            assert result["method"] == "sequential" and result["cuped"] is None, (where, metric, result)
            test = SequentialTwoSidedTTest(statistic(CONTROL, metric), statistic(TREATMENT, metric), config)
            check_comparison(result, test, f"{where} {metric}")
        control = next(g for g in report["groups"] if g["variant"] == CONTROL)
        assert all(m["method"] is None and m["p_value"] is None for m in control["metrics"].values()), where


def test_a_cuped_report_is_gbstats_with_the_pre_exposure_window(aviary: Server, aviary_factory, database_url: str, client_key: str) -> None:
    api, client = admin(aviary), Api(aviary, client_key)
    metrics = {"cu_messages": {"kind": "count", "event": "message"}, "cu_spend": {"kind": "sum", "event": "purchase"},
               "cu_thumbs": {"kind": "proportion", "event": "feedback", "where": {"eq": 1}},
               "cu_rating": {"kind": "mean", "event": "answer_rating"}}
    for key, body in metrics.items():
        expect(api.put(f"/v1/metrics/{key}", json=body), 201, 200)
    key = "cuped-chat"
    create_experiment(aviary, two_variant(key, list(metrics), {"cuped": True, "cuped_days": 14}))
    units = [f"cu-{i}" for i in range(260)]
    rng = random.Random(2013)
    now = datetime.now(timezone.utc)
    # Before exposure: each unit's habits over the last two weeks (inside the window), and an
    # old burst 20 days ago (outside it: never counted). Then exposure, then the experiment.
    activity = {u: rng.uniform(0.5, 4) for u in units}
    pre, old, events = {}, [], []
    for u in units:
        messages = sum(1 for _ in range(8) if rng.random() < activity[u] / 5)
        spend = [round(rng.uniform(1, 3) * activity[u], 2) for _ in range(3) if rng.random() < activity[u] / 4]
        thumbs = rng.random() < 0.2 + activity[u] / 10
        pre[u] = {"cu_messages": float(messages), "cu_spend": math.fsum(spend), "cu_thumbs": 1.0 if thumbs else 0.0}
        when = [stamp(now - timedelta(days=rng.uniform(0.01, 13))) for _ in range(messages + len(spend) + 1)]
        events += [event("message", u, when[i]) for i in range(messages)]
        events += [event("purchase", u, when[messages + i], s) for i, s in enumerate(spend)]
        events.append(event("feedback", u, when[-1], 1 if thumbs else 0))
        if rng.random() < 0.3:
            old_ts = stamp(now - timedelta(days=20))
            old += [event("message", u, old_ts) for _ in range(5)] + [event("purchase", u, old_ts, 100.0), event("feedback", u, old_ts, 1)]
    send(client, events + old)
    variant_of = assign(client, key, units)
    ts = stamp(datetime.now(timezone.utc) + timedelta(seconds=1))
    post, events = {}, []
    for u in units:
        lift = 0.25 if variant_of[u] == TREATMENT else 0.0
        messages = sum(1 for _ in range(8) if rng.random() < activity[u] / 5 + lift / 4)
        spend = [round(rng.uniform(1, 3) * activity[u] * (1 + lift), 2) for _ in range(3) if rng.random() < activity[u] / 4]
        thumbs = rng.random() < 0.2 + activity[u] / 10 + lift / 5
        ratings = [rng.randint(1, 5) for _ in range(rng.randint(0, 2))]
        post[u] = {"cu_messages": float(messages), "cu_spend": math.fsum(spend), "cu_thumbs": 1.0 if thumbs else 0.0}
        events += [event("message", u, ts) for _ in range(messages)]
        events += [event("purchase", u, ts, s) for s in spend]
        events += [event("answer_rating", u, ts, r) for r in ratings]
        events.append(event("feedback", u, ts, 1 if thumbs else 0))
    send(client, events)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{key}/report").json()["exposed_units"].values()) == len(units), timeout=10)

    def statistic(variant: str, metric: str) -> RegressionAdjustedStatistic:
        group = [u for u in units if variant_of[u] == variant]
        x, y = [post[u][metric] for u in group], [pre[u][metric] for u in group]
        if metric == "cu_thumbs":
            p, q = ProportionStatistic(n=len(x), sum=math.fsum(x)), ProportionStatistic(n=len(y), sum=math.fsum(y))
        else:
            p, q = sample_mean(x), sample_mean(y)
        return RegressionAdjustedStatistic(n=len(x), post_statistic=p, pre_statistic=q,
                                           post_pre_sum_of_products=math.fsum(a * b for a, b in zip(x, y)), theta=0)

    for where, report in reports(aviary, aviary_factory, database_url, key):
        treatment = next(g for g in report["groups"] if g["variant"] == TREATMENT)
        for metric in ("cu_messages", "cu_spend", "cu_thumbs"):
            result = treatment["metrics"][metric]
            a, b = statistic(CONTROL, metric), statistic(TREATMENT, metric)
            unadjusted = a.post_statistic.variance / a.n + b.post_statistic.variance / b.n
            control_mean = a.post_statistic.mean
            test = TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute"))
            assert isinstance(test.stat_a, RegressionAdjustedStatistic), metric  # θ ≠ 0: adjusted
            assert result["method"] == "welch", (where, metric, result)
            check_comparison(result, test, f"{where} {metric}")
            close(result["cuped"]["theta"], float(test.stat_a.theta), f"{where} {metric} theta")
            close(result["cuped"]["variance_reduction"], 1 - float(test.variance) / unadjusted, f"{where} {metric} variance reduction")
            # Habits carry over: the covariate removes variance (little for a 0/1 metric).
            assert result["cuped"]["variance_reduction"] > (0 if metric == "cu_thumbs" else 0.05), (where, metric, result["cuped"])
            close(result["relative_lift"], float(test.point_estimate) / control_mean, f"{where} {metric} lift")
            # The group's own value stays the unadjusted mean.
            close(result["mean"], b.post_statistic.mean, f"{where} {metric} mean")
        rating = treatment["metrics"]["cu_rating"]
        assert rating["cuped"] is None and "CUPED applies to count, sum and proportion metrics" in rating["note"], (where, rating)
    # By model, CUPED does not apply and says so.
    by_model = expect(api.get(f"/v1/experiments/{key}/report", params={"by": "model"}), 200).json()
    treated = next(g for g in by_model["groups"] if g["variant"] == TREATMENT)
    assert treated["metrics"]["cu_messages"]["cuped"] is None
    assert "CUPED applies to reports by variant" in treated["metrics"]["cu_messages"]["note"]
    # Changing the analysis of the running experiment changes no assignment, only the report.
    doc = replace_experiment(aviary, key, lambda body: body["analysis"].update({"cuped": False, "sequential": True}))
    assert doc["analysis"] == {"sequential": True, "sequential_tuning": 5000, "cuped": False, "cuped_days": 14, "correction": "none"}
    assert assign(client, key, units) == variant_of
    after = expect(api.get(f"/v1/experiments/{key}/report"), 200).json()
    changed = next(g for g in after["groups"] if g["variant"] == TREATMENT)["metrics"]["cu_messages"]
    assert changed["method"] == "sequential" and changed["cuped"] is None and changed["note"] is None, changed
