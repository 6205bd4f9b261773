"""Canary rollouts end to end (docs/api.md, "Rollouts"): steps, gates, guardrails, rollback on every replica,
the webhook, and leadership moving when the leading replica dies.

Every server here ticks every 0.3 s (AVIARY_ROLLOUT_TICK) and steps last 1 s, so a rollout of
a few steps takes seconds. The module's own database is shared by the servers it starts.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from datetime import datetime, timezone

import pytest

from aviary_e2e import Api, Server, admin, create_client_key, create_experiment, dumps, expect, key_everywhere, poll_until
from aviary_e2e import canary_rollout as canary, get_experiment as state
from webhook_receiver import WebhookReceiver as Hooks

TICK = "0.3"
REPLICATION_DEADLINE = 1.0


def split_of(doc: dict) -> dict:
    return {e["variant"]: e["weight"] for e in doc["rules"][-1]["serve"]["split"]}


@pytest.fixture(scope="module")
def replicas(aviary_factory) -> tuple[Server, Server]:
    a = aviary_factory(AVIARY_ROLLOUT_TICK=TICK, AVIARY_LOG_LEVEL="info")
    b = aviary_factory(AVIARY_ROLLOUT_TICK=TICK, AVIARY_LOG_LEVEL="info")
    api = admin(a)
    expect(api.put("/v1/metrics/error_rate", json={"kind": "ratio", "numerator": "request_error", "denominator": "request"}), 201, 200)
    return a, b


def test_healthy_canary_walks_every_step_and_completes(replicas) -> None:
    a, _ = replicas
    key = "walk"
    doc = create_experiment(a, canary(key, {"variant": "canary", "steps": [10, 50, 100], "step_seconds": 1,
                                            "guardrails": [{"metric": "error_rate", "max": 0.5}]}))
    assert doc["rollout_state"]["state"] == "running" and doc["rollout_state"]["percent"] == 10
    assert split_of(doc) == {"stable": 90, "canary": 10}
    seen = set()

    def completed():
        s = state(a, key)
        seen.add(split_of(s)["canary"])
        return s["rollout_state"]["state"] == "completed"

    poll_until(completed, timeout=15, interval=0.1)
    final = state(a, key)
    assert split_of(final) == {"stable": 0, "canary": 100}
    assert seen <= {10, 50, 100} and 50 in seen
    history = expect(admin(a).get(f"/v1/experiments/{key}/report"), 200).json()["rollout"]["history"]
    assert [h["event"] for h in history] == ["started", "advanced", "advanced", "completed"], dumps(history)
    assert [h["percent"] for h in history] == [10, 50, 100, 100]


def test_gate_waits_for_approval(replicas) -> None:
    a, _ = replicas
    key = "gated"
    create_experiment(a, canary(key, {"variant": "canary", "steps": [20, 100], "step_seconds": 1, "approval_before": [100]}))
    poll_until(lambda: state(a, key)["rollout_state"]["state"] == "awaiting_approval", timeout=10)
    time.sleep(1.5)  # several ticks: still waiting, still at 20 %
    held = state(a, key)
    assert held["rollout_state"]["state"] == "awaiting_approval" and split_of(held)["canary"] == 20
    approved = expect(admin(a).post(f"/v1/experiments/{key}/rollout/approve"), 200).json()
    assert approved["rollout_state"]["step"] == 1 and split_of(approved)["canary"] == 100
    poll_until(lambda: state(a, key)["rollout_state"]["state"] == "completed", timeout=10)


def test_min_units_holds_the_step(replicas) -> None:
    a, _ = replicas
    key = "thin"
    create_experiment(a, canary(key, {"variant": "canary", "steps": [5, 50], "step_seconds": 1, "min_units": 1000}))
    time.sleep(2.5)  # the step's time is long up, but no unit has been exposed
    s = state(a, key)
    assert s["rollout_state"]["state"] == "running" and s["rollout_state"]["step"] == 0, dumps(s["rollout_state"])


def test_guardrail_breach_rolls_back_everywhere_and_notifies(replicas) -> None:
    a, b = replicas
    hooks = Hooks()
    try:
        key = "breach"
        create_experiment(a, canary(key, {
            "variant": "canary", "steps": [50, 90, 100], "step_seconds": 1, "approval_before": [100], "notify_url": hooks.url,
            "guardrails": [{"metric": "error_rate", "max": 0.1}]}))
        client_a = Api(a, create_client_key(a))
        client_b = Api(b, client_a.key)
        key_everywhere(client_a.key, a, b)
        # Units in the canary at 50 %, seen by both replicas.
        canaries = []
        for i in range(200):
            unit = f"user-{i}"
            if expect(client_a.get(f"/v1/assign/{key}", headers={"X-Aviary-User": unit}), 200).json()["assignments"][key]["variant"] == "canary":
                canaries.append(unit)
            if len(canaries) == 10:
                break
        assert canaries
        for unit in canaries:
            poll_until(lambda: client_b.get(f"/v1/assign/{key}", headers={"X-Aviary-User": unit}).json()["assignments"][key]["variant"] == "canary", timeout=2)
        # The canaries were exposed at 50 %; the rollout has moved on to 90 % and waits at the
        # gate, still guarded: the current step's events count whenever their units came in.
        poll_until(lambda: state(a, key)["rollout_state"]["state"] == "awaiting_approval", timeout=10)
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        batch = []
        for unit in canaries:
            for t in ("request", "request_error"):
                batch.append({"id": str(uuid.uuid4()), "type": t, "user_id": unit, "ts": now})
        expect(client_a.post("/v1/events", json=batch), 200)
        sent = time.monotonic()
        poll_until(lambda: state(a, key)["status"] == "rolled_back", timeout=5, interval=0.05)
        rolled_back = time.monotonic()
        # Within two ticks of the events, plus the time a tick takes to measure.
        assert rolled_back - sent < 2 * float(TICK) + 0.5, rolled_back - sent
        doc = state(a, key)
        assert doc["rollout_state"]["state"] == "rolled_back" and "error_rate" in doc["rollout_state"]["reason"]
        assert split_of(doc) == {"stable": 100, "canary": 0}
        assert any(not g["ok"] for g in doc["rollout_state"]["guardrails"])
        # The other replica serves the control within a second.
        _, waited = poll_until(
            lambda: all(client_b.get(f"/v1/assign/{key}", headers={"X-Aviary-User": u}).json()["assignments"][key]["variant"] == "stable"
                        for u in canaries[:3]),
            timeout=REPLICATION_DEADLINE + 1)
        assert time.monotonic() - rolled_back <= REPLICATION_DEADLINE + 0.2
        poll_until(lambda: hooks.received, timeout=5)
        notice = hooks.received[0]
        assert notice["experiment"] == key and notice["event"] == "rolled_back" and "error_rate" in notice["reason"]
    finally:
        hooks.close()


def test_manual_rollback_notifies_and_retries(replicas) -> None:
    a, _ = replicas
    hooks = Hooks(failures=2)
    try:
        key = "by-hand"
        create_experiment(a, canary(key, {"variant": "canary", "steps": [25, 100], "step_seconds": 3600, "notify_url": hooks.url}))
        doc = expect(admin(a).post(f"/v1/experiments/{key}/rollback", json={"reason": "latency complaints"}), 200).json()
        assert doc["status"] == "rolled_back" and doc["rollout_state"]["reason"] == "latency complaints"
        assert split_of(doc) == {"stable": 100, "canary": 0}
        poll_until(lambda: hooks.received, timeout=10)
        assert hooks.received[0]["reason"] == "latency complaints"
        assert hooks.attempts == 3  # two refusals, then delivered once
    finally:
        hooks.close()


def test_pause_holds_the_step_clock(replicas) -> None:
    a, _ = replicas
    key = "held"
    create_experiment(a, canary(key, {"variant": "canary", "steps": [10, 100], "step_seconds": 2}))
    time.sleep(1.0)
    paused = expect(admin(a).post(f"/v1/experiments/{key}/pause"), 200).json()
    assert paused["rollout_state"]["state"] == "paused"
    time.sleep(2.5)  # longer than a step: a running clock would have advanced
    resumed = expect(admin(a).post(f"/v1/experiments/{key}/resume"), 200).json()
    assert resumed["rollout_state"]["state"] == "running" and resumed["rollout_state"]["step"] == 0
    time.sleep(0.4)
    assert state(a, key)["rollout_state"]["step"] == 0  # about 1 s of the step is left
    poll_until(lambda: state(a, key)["rollout_state"]["step"] == 1, timeout=5)


def scrape(server: Server) -> dict:
    """`GET /metrics` through prometheus_client's text parser: {(name, labels): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    r = expect(Api(server, None).get("/metrics"), 200)
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_parse_and_follow_the_rollout(replicas) -> None:
    a, _ = replicas
    key = "watched"
    create_experiment(a, canary(key, {"variant": "canary", "steps": [10, 100], "step_seconds": 1, "approval_before": [100],
                                      "guardrails": [{"metric": "error_rate", "max": 0.5}]}))
    client = Api(a, create_client_key(a))
    for i in range(20):
        expect(client.get(f"/v1/assign/{key}", headers={"X-Aviary-User": f"m-{i}"}), 200)
    state_label = lambda s: (("experiment", key), ("state", s))  # noqa: E731
    first = scrape(a)
    assert first[("aviary_rollout_state", state_label("running"))] == 1
    assert first[("aviary_rollout_percent", (("experiment", key),))] == 10
    assert sum(v for (name, labels), v in first.items()
               if name == "aviary_assignments_total" and ("experiment", key) in labels) == 20
    assert any(name == "aviary_http_requests_total" and ("route", "/v1/assign/{key}") in labels for (name, labels) in first)
    assert any(name.startswith("aviary_http_request_duration_seconds") for (name, _) in first)
    assert ("aviary_exposure_queue_depth", ()) in first
    poll_until(lambda: scrape(a)[("aviary_rollout_state", state_label("awaiting_approval"))] == 1, timeout=10)
    expect(admin(a).post(f"/v1/experiments/{key}/rollout/approve"), 200)
    later = scrape(a)
    assert later[("aviary_rollout_step", (("experiment", key),))] == 1
    assert later[("aviary_rollout_percent", (("experiment", key),))] == 100
    assert ("aviary_rollout_guardrail_ok", (("experiment", key), ("metric", "error_rate"))) in later
    # An archived experiment's rollout is no longer reported.
    expect(admin(a).delete(f"/v1/experiments/{key}"), 200)
    gone = scrape(a)
    assert not any(("experiment", key) in labels for (name, labels) in gone if name.startswith("aviary_rollout")), dumps(
        [name for (name, labels) in gone if ("experiment", key) in labels])


def test_a_sequential_guardrail_lets_noise_pass_and_catches_a_broken_canary(replicas) -> None:
    """Two rollouts guarded by `error_rate` `max_increase` 0 with `"test": "sequential"`, each on
    its own 60 returning users who ask for their experiment alone (`?experiments=`), then send a
    request every round and an error one time in ten, whatever they are served: a threshold at 0
    trips whenever the canary's share of errors is a little above the control's, in about every
    other such rollout (the A/A simulation of docs/statistics.md measures it). `calm` walks to
    100 % untouched; in `broken` the canary fails every request of the users it serves, and the
    always-valid interval rolls it back.

    The populations are apart because an event without an experiment counts for every
    experiment its unit was served: users of both would carry `broken`'s failures into `calm`,
    unevenly between its variants (60 users do not split exactly in half), and roll it back."""
    a, _ = replicas
    client = Api(a, create_client_key(a))
    guardrails = [{"metric": "error_rate", "max_increase": 0.0, "test": "sequential"}]
    for key in ("calm", "broken"):
        doc = create_experiment(a, canary(key, {"variant": "canary", "steps": [50, 100], "step_seconds": 3, "guardrails": guardrails}))
        assert doc["rollout"]["guardrails"] == guardrails
    populations = {key: ([f"{key}-user-{i}" for i in range(60)], random.Random(seed)) for key, seed in (("calm", 1405), ("broken", 1406))}
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        batch = []
        for key, (users, rng) in populations.items():
            served = {unit: expect(client.get(f"/v1/assign?experiments={key}", headers={"X-Aviary-User": unit}), 200).json()["assignments"]
                      for unit in users}
            assert all(set(answer) == {key} for answer in served.values())
            now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for unit in users:
                noise = rng.random() < 0.1
                batch.append({"id": str(uuid.uuid4()), "type": "request", "user_id": unit, "ts": now})
                if noise or (key == "broken" and served[unit][key]["variant"] == "canary"):
                    batch.append({"id": str(uuid.uuid4()), "type": "request_error", "user_id": unit, "ts": now})
        expect(client.post("/v1/events", json=batch), 200)
        if state(a, "calm")["rollout_state"]["state"] != "running" and state(a, "broken")["status"] == "rolled_back":
            break
        time.sleep(0.2)
    broken = state(a, "broken")
    assert broken["status"] == "rolled_back", dumps(broken["rollout_state"])
    assert "always-valid interval" in broken["rollout_state"]["reason"], broken["rollout_state"]["reason"]
    calm = state(a, "calm")
    assert calm["rollout_state"]["state"] == "completed", dumps(calm["rollout_state"])
    history = expect(admin(a).get("/v1/experiments/calm/report"), 200).json()["rollout"]["history"]
    assert [h["event"] for h in history] == ["started", "advanced", "completed"], dumps(history)


# Last: it kills one of the module's replicas.
def test_killing_the_leader_lets_the_other_continue(replicas) -> None:
    a, b = replicas
    key = "failover"
    create_experiment(a, canary(key, {"variant": "canary", "steps": [10, 20, 30, 100], "step_seconds": 1}))
    poll_until(lambda: state(a, key)["rollout_state"]["step"] >= 1, timeout=10)
    leader = next(s for s in (a, b) if "leading rollouts" in open(s.log_path, encoding="utf-8", errors="replace").read())
    follower = b if leader is a else a
    leader.process.send_signal(signal.SIGKILL)
    leader.process.wait(timeout=10)
    poll_until(lambda: state(follower, key)["rollout_state"]["state"] == "completed", timeout=20)
    assert "leading rollouts" in open(follower.log_path, encoding="utf-8", errors="replace").read()
