"""Outcomes end to end (docs/api.md, "Events" and "Reports"): events in, reports out, checked against SciPy.

A generated experiment: units are exposed through the real assignment route (and a few
only through `$exposure` events), then each unit sends known events. The expected report is
computed here from the same per-unit data with numpy/SciPy — an independent implementation —
and compared with the server's JSON and CSV.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import pytest
from scipy import stats

import report_check
from aviary_e2e import Api, Server, admin, create_experiment, dumps, expect, poll_until
from conftest import psql

KEY = "report-e2e"
PLAIN = "report-e2e-plain"
METRICS = {
    "answer_rating": {"event": "answer_rating", "kind": "mean"},
    "messages": {"event": "message", "kind": "count"},
    "spend": {"event": "purchase", "kind": "sum"},
    "thumbs_up": {"event": "feedback", "kind": "proportion", "where": {"eq": 1}},
    "error_rate": {"kind": "ratio", "numerator": "request_error", "denominator": "request"},
    "latency_p90": {"event": "response", "kind": "quantile", "q": 0.9},
}
EXPERIMENT = {
    "key": KEY,
    "unit": "user_id",
    "variants": [{"key": "gpt-4", "value": {"model": "gpt-4"}}, {"key": "qwen", "value": {"model": "qwen-max"}}],
    "control": "gpt-4",
    "rules": [{"name": "everyone", "serve": {"split": [{"variant": "gpt-4", "weight": 50}, {"variant": "qwen", "weight": 50}]}}],
    "metrics": {"primary": ["answer_rating"], "secondary": ["messages", "spend", "thumbs_up"],
                "guardrails": ["error_rate", "latency_p90"]},
}
MODELS = ("gpt-4", "qwen-max")
ASSIGNED_UNITS = 80
CLAIMED_UNITS = 6  # exposed only by `$exposure` events, as a client evaluating flags itself would


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event(unit: str, type_: str, ts: datetime, value: float = 1, model: str | None = None, **extra) -> dict:
    e = {"id": str(uuid.uuid4()), "type": type_, "user_id": unit, "ts": iso(ts), "value": value}
    if model is not None:
        e["model"] = model
    e.update(extra)
    return e


@pytest.fixture(scope="module")
def outcome(aviary: Server, client_key: str):
    """Exposes units, sends their events, and returns what was sent, per unit."""
    api = admin(aviary)
    for key, body in METRICS.items():
        expect(api.put(f"/v1/metrics/{key}", json=body), 201, 200)
    create_experiment(aviary, dict(EXPERIMENT))
    # The same units, exposed by assignment only: no event names this one (the report's
    # path without claims).
    create_experiment(aviary, dict(EXPERIMENT, key=PLAIN))
    client = Api(aviary, client_key)

    rng = random.Random(20261127)
    variant_of: dict[str, str] = {}
    plain_variant_of: dict[str, str] = {}
    for i in range(ASSIGNED_UNITS):
        unit = f"unit-{i}"
        r = expect(client.get("/v1/assign", headers={"X-Aviary-User": unit}), 200).json()
        variant_of[unit] = r["assignments"][KEY]["variant"]
        plain_variant_of[unit] = r["assignments"][PLAIN]["variant"]
    start = datetime.now(timezone.utc) + timedelta(seconds=1)
    events: list[dict] = []
    for i in range(CLAIMED_UNITS):
        unit = f"claimed-{i}"
        variant_of[unit] = ("gpt-4", "qwen")[i % 2]
        events.append(event(unit, "$exposure", start, experiment=KEY, variant=variant_of[unit]))

    sent: dict[str, list[dict]] = {}
    early: list[dict] = []
    for n, unit in enumerate(sorted(variant_of)):
        model = MODELS[n % 2]
        lift = 0.4 if variant_of[unit] == "qwen" else 0.0
        t = start + timedelta(seconds=1)
        mine: list[dict] = []
        for _ in range(rng.randint(0, 5)):
            mine.append(event(unit, "message", t, model=model))
        # Some units rate nothing: `mean` leaves them out.
        for _ in range(rng.choice([0, 1, 2, 3])):
            mine.append(event(unit, "answer_rating", t, rng.choice([1, 2, 3, 4, 5]) + lift * rng.random(), model=model))
        for _ in range(rng.randint(0, 2)):
            mine.append(event(unit, "purchase", t, round(rng.uniform(0, 20), 2), model=model))
        for _ in range(rng.randint(0, 2)):
            mine.append(event(unit, "feedback", t, rng.choice([0, 1]), model=model))
        for _ in range(rng.randint(0, 4)):
            mine.append(event(unit, "request", t, model=model))
            if rng.random() < 0.2:
                mine.append(event(unit, "request_error", t, model=model))
        for _ in range(rng.randint(0, 3)):
            mine.append(event(unit, "response", t, round(rng.lognormvariate(6, 0.5), 1), model=model))
        sent[unit] = mine
        events.extend(mine)
        # Before the unit's exposure: must never count.
        early.append(event(unit, "message", start - timedelta(days=1), model=model))
        early.append(event(unit, "purchase", start - timedelta(days=1), 1000, model=model))
    rng.shuffle(events)
    for i in range(0, len(events), 500):
        r = expect(client.post("/v1/events", json=events[i:i + 500]), 200, 201, 202).json()
        assert r["duplicates"] == 0, dumps(r)
    expect(client.post("/v1/events", json=early), 200, 201, 202)
    # Exposures are written off the request path; wait until all are stored.
    total = ASSIGNED_UNITS + CLAIMED_UNITS
    poll_until(lambda: sum(api.get(f"/v1/experiments/{KEY}/report").json()["exposed_units"].values()) == total, timeout=10)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{PLAIN}/report").json()["exposed_units"].values()) == ASSIGNED_UNITS, timeout=10)
    return variant_of, sent, plain_variant_of


def check_group(group: dict, control_units: dict[str, list[dict]], units: dict[str, list[dict]], where: str) -> None:
    report_check.check_group(group, control_units, units, where, metrics=METRICS, control=EXPERIMENT["control"])


def split_units(variant_of, sent, keep=lambda e: True):
    groups: dict[str, dict[str, list[dict]]] = defaultdict(dict)
    for unit, variant in variant_of.items():
        groups[variant][unit] = [e for e in sent[unit] if keep(e)]
    return groups


# -- tests -----------------------------------------------------------------------------------


def test_report_matches_scipy(aviary: Server, outcome) -> None:
    variant_of, sent, _ = outcome
    report = expect(admin(aviary).get(f"/v1/experiments/{KEY}/report"), 200).json()
    assert report["experiment"] == KEY and report["control"] == "gpt-4"
    groups = split_units(variant_of, sent)
    assert [g["variant"] for g in report["groups"]] == ["gpt-4", "qwen"]
    for group in report["groups"]:
        assert group["model"] is None and group["app_version"] is None
        check_group(group, groups["gpt-4"], groups[group["variant"]], group["variant"])
    observed = [len(groups["gpt-4"]), len(groups["qwen"])]
    expected_srm = stats.chisquare(observed, [sum(observed) / 2] * 2).pvalue
    report_check.close(report["srm_p_value"], float(expected_srm), "srm_p_value")
    assert report["srm_warning"] == (expected_srm < 0.001)
    assert "NaN" not in expect(admin(aviary).get(f"/v1/experiments/{KEY}/report"), 200).text


def test_report_without_claims_matches_scipy(aviary: Server, outcome) -> None:
    _, sent, variant_of = outcome
    report = expect(admin(aviary).get(f"/v1/experiments/{PLAIN}/report"), 200).json()
    groups = split_units(variant_of, sent)
    for group in report["groups"]:
        check_group(group, groups["gpt-4"], groups[group["variant"]], f"{PLAIN} {group['variant']}")


def test_report_by_model_separates_models(aviary: Server, outcome) -> None:
    variant_of, sent, _ = outcome
    report = expect(admin(aviary).get(f"/v1/experiments/{KEY}/report", params={"by": "model"}), 200).json()
    seen = set()
    for group in report["groups"]:
        model = group["model"]
        assert model in MODELS, dumps(group)
        seen.add((group["variant"], model))
        # Units of a model group are the units with events of that model.
        units = {u: [e for e in sent[u] if e.get("model") == model] for u, v in variant_of.items()
                 if v == group["variant"] and any(e.get("model") == model for e in sent[u])}
        control = {u: [e for e in sent[u] if e.get("model") == model] for u, v in variant_of.items()
                   if v == "gpt-4" and any(e.get("model") == model for e in sent[u])}
        check_group(group, control, units, f"{group['variant']}/{model}")
    assert seen == {(v, m) for v in ("gpt-4", "qwen") for m in MODELS}


def test_csv_matches_json(aviary: Server, outcome) -> None:
    api = admin(aviary)
    report = expect(api.get(f"/v1/experiments/{KEY}/report", params={"by": "variant,model"}), 200).json()
    r = expect(api.get(f"/v1/experiments/{KEY}/report.csv", params={"by": "variant,model"}), 200)
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert list(rows[0].keys()) == [
        "variant", "model", "app_version", "metric", "kind", "units", "n", "mean", "stddev", "delta",
        "relative_lift", "ci95_low", "ci95_high", "p_value", "chance_to_beat_control", "adjusted_p_value"]
    assert len(rows) == len(report["groups"]) * len(METRICS)
    by_key = {(row["variant"], row["model"], row["metric"]): row for row in rows}
    for group in report["groups"]:
        for key, metric in group["metrics"].items():
            row = by_key[(group["variant"], group["model"] or "", key)]
            assert row["kind"] == metric["kind"] and int(row["units"]) == group["units"] and int(row["n"]) == metric["n"]
            ci = metric["ci95"] or [None, None]
            for column, value in (("mean", metric["mean"]), ("stddev", metric["stddev"]), ("delta", metric["delta"]),
                                  ("relative_lift", metric["relative_lift"]), ("ci95_low", ci[0]), ("ci95_high", ci[1]),
                                  ("p_value", metric["p_value"]), ("chance_to_beat_control", metric["chance_to_beat_control"])):
                if value is None:
                    assert row[column] == "", (key, column)
                else:
                    assert float(row[column]) == pytest.approx(value, rel=1e-12), (key, column)


def test_events_before_exposure_and_window(aviary: Server, outcome) -> None:
    variant_of, sent, _ = outcome
    api = admin(aviary)
    report = expect(api.get(f"/v1/experiments/{KEY}/report"), 200).json()
    # The early purchases of 1000 would dominate `spend` if they counted.
    for group in report["groups"]:
        assert group["metrics"]["spend"]["mean"] < 100, dumps(group)
    # A window that ends before any exposure holds nothing.
    past = iso(datetime.now(timezone.utc) - timedelta(days=3))
    empty = expect(api.get(f"/v1/experiments/{KEY}/report", params={"to": past}), 200).json()
    assert all(g["units"] == 0 and g["events"] == 0 for g in empty["groups"]), dumps(empty)
    assert empty["srm_p_value"] is None and empty["srm_note"]
    for g in empty["groups"]:
        for metric in g["metrics"].values():
            assert metric["mean"] is None and metric["note"], dumps(metric)


def test_report_rejects_bad_queries(aviary: Server, outcome) -> None:
    api = admin(aviary)
    r = expect(api.get(f"/v1/experiments/{KEY}/report", params={"by": "variant,colour"}), 400).json()
    assert r["error"]["details"][0]["path"] == "by[1]"
    r = expect(api.get(f"/v1/experiments/{KEY}/report", params={"from": "yesterday"}), 400).json()
    assert r["error"]["details"][0]["path"] == "from"
    expect(api.get("/v1/experiments/no-such-experiment/report"), 404)
    expect(Api(aviary, None).get(f"/v1/experiments/{KEY}/report"), 401)


def test_resent_and_invalid_batches(aviary: Server, client_key: str, outcome) -> None:
    client = Api(aviary, client_key)
    api = admin(aviary)
    before = expect(api.get(f"/v1/experiments/{KEY}/report"), 200).json()
    now = datetime.now(timezone.utc) + timedelta(seconds=2)
    batch = [event("unit-0", "message", now) for _ in range(3)]
    first = expect(client.post("/v1/events", json=batch), 200, 201, 202).json()
    assert first == {"accepted": 3, "duplicates": 0}
    _, sent, _ = outcome
    sent["unit-0"].extend(batch)  # what later tests expect
    again = expect(client.post("/v1/events", json=batch), 200, 201, 202).json()
    assert again == {"accepted": 0, "duplicates": 3}
    invalid = [event("unit-0", "message", now), {"id": str(uuid.uuid4()), "type": "message", "ts": iso(now)}]
    r = expect(client.post("/v1/events", json=invalid), 400).json()
    assert [d["index"] for d in r["error"]["details"]] == [1], dumps(r)
    after = expect(api.get(f"/v1/experiments/{KEY}/report"), 200).json()
    events = lambda rep: sum(g["events"] for g in rep["groups"])  # noqa: E731
    assert events(after) == events(before) + 3


def test_fallback_unit_attribution(aviary: Server, client_key: str, outcome) -> None:
    """An experiment on user_id falling back to anonymous_id: an anonymous visitor's events
    count through its anonymous id, a signed-in user's through its user id."""
    key = "fallback-e2e"
    body = {
        "key": key, "unit": "user_id", "fallback_unit": "anonymous_id",
        "variants": [{"key": "off", "value": False}, {"key": "on", "value": True}], "control": "off",
        "rules": [{"name": "everyone", "serve": {"variant": "on"}}],
        "metrics": {"primary": ["messages"]},
    }
    create_experiment(aviary, body)
    client = Api(aviary, client_key)
    expect(client.get(f"/v1/assign/{key}", headers={"Cookie": "aviary_id=anon-visitor"}), 200)
    expect(client.get(f"/v1/assign/{key}", headers={"X-Aviary-User": "signed-in"}), 200)
    api = admin(aviary)
    poll_until(lambda: api.get(f"/v1/experiments/{key}/report").json()["exposed_units"]["on"] == 2, timeout=10)
    t = datetime.now(timezone.utc) + timedelta(seconds=1)
    batch = [
        {"id": str(uuid.uuid4()), "type": "message", "anonymous_id": "anon-visitor", "ts": iso(t)},
        {"id": str(uuid.uuid4()), "type": "message", "anonymous_id": "anon-visitor", "ts": iso(t)},
        # Signed in: the user id is the unit, whatever anonymous id rides along.
        {"id": str(uuid.uuid4()), "type": "message", "user_id": "signed-in", "anonymous_id": "anon-visitor", "ts": iso(t)},
    ]
    expect(client.post("/v1/events", json=batch), 200)
    group = expect(api.get(f"/v1/experiments/{key}/report"), 200).json()["groups"][1]
    assert group["variant"] == "on" and group["units"] == 2 and group["events"] == 3, dumps(group)
    assert group["metrics"]["messages"]["mean"] == 1.5


def test_report_from_state_matches_scipy(aviary: Server, aviary_factory, database_url: str, client_key: str, outcome) -> None:
    """A replica refreshing report states every 0.2 s: once both experiments have a state,
    reports come from it, and stay equal to SciPy's numbers as new events arrive for units in
    the state and a new unit is exposed after its first events (recomputed at report time,
    then folded into the state). Runs last: it adds events to the module's experiments."""
    variant_of, sent, plain_variant_of = outcome
    refresher = aviary_factory(AVIARY_REPORT_REFRESH="0.2")
    poll_until(lambda: psql(database_url, f"SELECT count(*) FROM report_states WHERE experiment_key IN ('{KEY}', '{PLAIN}')") == "2",
               timeout=20)
    states = psql(database_url, f"SELECT count(*) FROM report_units WHERE experiment_key = '{KEY}'")
    assert int(states) == sum(1 for unit in variant_of if sent[unit]), states

    def check(key: str, variants: dict[str, str], where: str) -> None:
        for server in (aviary, refresher):
            report = expect(admin(server).get(f"/v1/experiments/{key}/report"), 200).json()
            groups = split_units(variants, sent)
            for group in report["groups"]:
                check_group(group, groups["gpt-4"], groups[group["variant"]], f"{where}: {key} {group['variant']}")

    check(KEY, variant_of, "from the state")
    check(PLAIN, plain_variant_of, "from the state")

    # More events for units in the state; a new unit whose events come before its exposure is
    # recorded (exposures are written off the request path).
    client = Api(refresher, client_key)
    t = datetime.now(timezone.utc) + timedelta(seconds=1)
    sent = {unit: list(events) for unit, events in sent.items()}
    more: list[dict] = []
    for unit in sorted(variant_of)[:10]:
        extra = [event(unit, "message", t), event(unit, "answer_rating", t, 5), event(unit, "response", t, 4000.0)]
        sent[unit] += extra
        more += extra
    newcomer = "unit-new"
    later = t + timedelta(seconds=1)
    sent[newcomer] = [event(newcomer, "purchase", later, 42.5), event(newcomer, "message", later)]
    expect(client.post("/v1/events", json=more + sent[newcomer]), 200)
    r = expect(client.get("/v1/assign", headers={"X-Aviary-User": newcomer}), 200).json()
    variant_of = dict(variant_of, **{newcomer: r["assignments"][KEY]["variant"]})
    plain_variant_of = dict(plain_variant_of, **{newcomer: r["assignments"][PLAIN]["variant"]})
    api = admin(refresher)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{KEY}/report").json()["exposed_units"].values()) == len(variant_of), timeout=10)
    poll_until(lambda: sum(api.get(f"/v1/experiments/{PLAIN}/report").json()["exposed_units"].values()) == len(plain_variant_of),
               timeout=10)
    check(KEY, variant_of, "units changed since the watermark")
    check(PLAIN, plain_variant_of, "units changed since the watermark")
    # Folded: the newcomer's row is in the state.
    poll_until(lambda: psql(database_url, f"SELECT count(*) FROM report_units WHERE unit = '{newcomer}'") == "2", timeout=20)
    check(KEY, variant_of, "after the fold")
