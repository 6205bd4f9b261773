"""Units that change variant, end to end (docs/api.md, "Which variant an event counts for").

Users of a chat product come back: the same few hundred units ask for their variant and send
events every second while a rollout ramps or a split is edited, so units move from the control
to the canary under the tests' eyes. Rollouts must count each event for the variant its unit
was served at the time (or a ramp stalls on `min_units`, and a canary that breaks only for the
units a step adds goes unseen); A/B reports must leave out the units served both variants and
stay equal to SciPy on the others, through the report state too.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

import report_check
from aviary_e2e import Api, Server, admin, create_client_key, create_experiment, dumps, expect, parallel, poll_until, replace_experiment
from aviary_e2e import canary_rollout as canary, get_experiment as state
from conftest import psql

TICK = "0.3"


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Population:
    """A fixed set of users who come back: each round, every unit asks for its variant of one
    experiment (`GET /v1/assign/{key}`) and then sends the events `events(unit, variant, seen)`
    makes, stamped just after the answer. `seen[unit]` lists the variants the unit was served,
    in order, each once."""

    def __init__(self, api: Api, experiment: str, units: list[str],
                 events: Callable[[str, str, list[str]], list[tuple[str, float]]]) -> None:
        self.api, self.experiment, self.units, self.events = api, experiment, units, events
        self.seen: dict[str, list[str]] = {u: [] for u in units}
        self.sent: dict[str, list[dict]] = defaultdict(list)
        self.lock = threading.Lock()
        self.error_sent_at: float | None = None  # monotonic time the first request_error was acknowledged
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failure: BaseException | None = None

    def assign(self, api: Api, unit: str) -> tuple[str, str, datetime]:
        r = expect(api.get(f"/v1/assign/{self.experiment}", headers={"X-Aviary-User": unit}), 200)
        # After the answer, and a millisecond on: never before the exposure it recorded.
        return unit, r.json()["assignments"][self.experiment]["variant"], datetime.now(timezone.utc) + timedelta(milliseconds=1)

    def round(self) -> None:
        batch: list[dict] = []
        for unit, variant, ts in parallel(self.api, self.assign, self.units, workers=4):
            with self.lock:
                seen = self.seen[unit]
                if not seen or seen[-1] != variant:
                    seen.append(variant)
                made = [{"id": str(uuid.uuid4()), "type": t, "user_id": unit, "ts": iso(ts), "value": v}
                        for t, v in self.events(unit, variant, list(seen))]
                self.sent[unit].extend(made)
            batch.extend(made)
        for i in range(0, len(batch), 500):
            expect(self.api.post("/v1/events", json=batch[i:i + 500]), 200)
            if self.error_sent_at is None and any(e["type"] == "request_error" for e in batch[i:i + 500]):
                self.error_sent_at = time.monotonic()

    def start(self, interval: float = 1.0) -> None:
        def loop() -> None:
            try:
                while not self._stop.is_set():
                    began = time.monotonic()
                    self.round()
                    self._stop.wait(max(0.0, interval - (time.monotonic() - began)))
            except BaseException as e:  # surfaced by stop()
                self.failure = e
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
        if self.failure:
            raise self.failure

    def moved(self) -> set[str]:
        with self.lock:
            return {u for u, seen in self.seen.items() if len(seen) > 1}


@pytest.fixture(scope="module")
def replicas(aviary_factory) -> tuple[Server, Server]:
    a = aviary_factory(AVIARY_ROLLOUT_TICK=TICK)
    b = aviary_factory(AVIARY_ROLLOUT_TICK=TICK)
    expect(admin(a).put("/v1/metrics/error_rate", json={"kind": "ratio", "numerator": "request_error", "denominator": "request"}), 201, 200)
    return a, b


def healthy(unit: str, variant: str, seen: list[str]) -> list[tuple[str, float]]:
    return [("request", 1)]


def test_returning_users_walk_a_rollout_to_its_gate_and_complete(replicas) -> None:
    a, _ = replicas
    key = "returning-walk"
    create_experiment(a, canary(key, {
        "variant": "canary", "steps": [10, 25, 50, 100], "step_seconds": 2, "min_units": 10, "approval_before": [100],
        "guardrails": [{"metric": "error_rate", "max": 0.05}]}))
    population = Population(Api(a, create_client_key(a)), key, [f"walker-{i}" for i in range(300)], healthy)
    population.start()
    try:
        # Each step needs 10 units with events in the canary; from the second step on, those are
        # mostly units that were in the control before (returning users count).
        value, waited = poll_until(lambda: state(a, key)["rollout_state"]["state"] == "awaiting_approval", timeout=40, interval=0.2)
        waiting = state(a, key)
        assert value, dumps(waiting["rollout_state"])
        assert waiting["rollout_state"]["step"] == 2 and waiting["rollout_state"]["percent"] == 50, dumps(waiting["rollout_state"])
        assert population.moved(), "no unit moved from the control to the canary"
        expect(admin(a).post(f"/v1/experiments/{key}/rollout/approve"), 200)
        poll_until(lambda: state(a, key)["rollout_state"]["state"] == "completed", timeout=15, interval=0.2)
    finally:
        population.stop()
    done = state(a, key)
    assert done["rollout_state"]["state"] == "completed", dumps(done["rollout_state"])
    history = expect(admin(a).get(f"/v1/experiments/{key}/report"), 200).json()["rollout"]["history"]
    assert {10, 25, 50, 100} <= {h["percent"] for h in history}, dumps(history)
    population.round()
    assert all(seen[-1] == "canary" for seen in population.seen.values())


def test_errors_from_units_moved_by_the_second_step_roll_it_back(replicas) -> None:
    a, b = replicas
    key = "returning-breach"
    create_experiment(a, canary(key, {
        "variant": "canary", "steps": [10, 50, 100], "step_seconds": 3, "approval_before": [100],
        "guardrails": [{"metric": "error_rate", "max": 0.05}]}))
    client = Api(a, create_client_key(a))

    def breaking(unit: str, variant: str, seen: list[str]) -> list[tuple[str, float]]:
        # Units the ramp moved from the control into the canary fail half their requests;
        # everyone else, the first canaries included, is healthy.
        if seen == ["stable", "canary"]:
            return [("request", 1), ("request", 1), ("request_error", 1)]
        return [("request", 1)]

    population = Population(client, key, [f"mover-{i}" for i in range(300)], breaking)
    population.start()
    try:
        poll_until(lambda: population.error_sent_at is not None, timeout=20, interval=0.05)
        assert population.error_sent_at is not None, dumps(state(a, key)["rollout_state"])
        poll_until(lambda: state(a, key)["status"] == "rolled_back", timeout=10, interval=0.05)
        rolled_back = time.monotonic()
    finally:
        population.stop()
    doc = state(a, key)
    assert doc["status"] == "rolled_back" and "error_rate" in doc["rollout_state"]["reason"], dumps(doc["rollout_state"])
    # During the second step, within two ticks of the errors (plus the time a tick takes).
    assert doc["rollout_state"]["step"] == 1, dumps(doc["rollout_state"])
    assert rolled_back - population.error_sent_at < 2 * float(TICK) + 0.5, rolled_back - population.error_sent_at
    moved = population.moved()
    assert moved
    # No moved unit is served the canary afterwards, on either replica.
    for server in (a, b):
        api = Api(server, client.key)
        poll_until(lambda: all(api.get(f"/v1/assign/{key}", headers={"X-Aviary-User": u}).json()["assignments"][key]["variant"] == "stable"
                               for u in sorted(moved)[:20]), timeout=2)
        for unit in sorted(moved):
            assert api.get(f"/v1/assign/{key}", headers={"X-Aviary-User": unit}).json()["assignments"][key]["variant"] == "stable", unit


METRICS = {
    "messages": {"event": "message", "kind": "count"},
    "answer_rating": {"event": "answer_rating", "kind": "mean"},
    "spend": {"event": "purchase", "kind": "sum"},
}


def test_a_split_that_moves_units_leaves_them_out_of_the_report(replicas, aviary_factory, database_url: str) -> None:
    """A 50/50 experiment whose split becomes 20/80 while its users keep coming: the units seen in
    both variants are `multiple_exposures`, and each group equals SciPy on the units seen in one
    variant only — from the report state, through the units it recomputes and after its fold."""
    a, _ = replicas
    key = "split-move"
    api = admin(a)
    for metric, body in METRICS.items():
        expect(api.put(f"/v1/metrics/{metric}", json=body), 201, 200)
    create_experiment(a, {
        "key": key, "variants": [{"key": "stable", "value": 1}, {"key": "canary", "value": 2}], "control": "stable",
        "rules": [{"name": "everyone", "serve": {"split": [{"variant": "stable", "weight": 50}, {"variant": "canary", "weight": 50}]}}],
        "metrics": {"primary": ["answer_rating"], "secondary": ["messages", "spend"]}})
    rng = random.Random(20261129)

    def activity(unit: str, variant: str, seen: list[str]) -> list[tuple[str, float]]:
        lift = 0.5 if variant == "canary" else 0.0
        made = [("message", 1)] * rng.randint(0, 3)
        made += [("answer_rating", rng.choice([1, 2, 3, 4, 5]) + lift * rng.random()) for _ in range(rng.choice([0, 1, 2]))]
        made += [("purchase", round(rng.uniform(0, 20), 2)) for _ in range(rng.randint(0, 1))]
        return made

    units = [f"splitter-{i}" for i in range(200)]
    population = Population(Api(a, create_client_key(a)), key, units, activity)
    population.round()
    population.round()
    refresher = aviary_factory(AVIARY_REPORT_REFRESH="0.2")
    poll_until(lambda: psql(database_url, f"SELECT count(*) FROM report_states WHERE experiment_key = '{key}'") == "1", timeout=20)

    def check(where: str, servers: tuple[Server, ...] = (a, refresher)) -> dict:
        moved = population.moved()
        single = {u: seen[0] for u, seen in population.seen.items() if len(seen) == 1}
        groups: dict[str, dict[str, list[dict]]] = defaultdict(dict)
        for unit, variant in single.items():
            groups[variant][unit] = population.sent[unit]
        for server in servers:
            report = expect(admin(server).get(f"/v1/experiments/{key}/report"), 200).json()
            assert report["multiple_exposures"] == len(moved), f"{where}: {report['multiple_exposures']} != {len(moved)}"
            assert report["exposed_units"] == {v: len(groups[v]) for v in ("stable", "canary")}, f"{where}: {dumps(report['exposed_units'])}"
            assert report["multiple_exposures_warning"] == (len(moved) > 0.01 * len(units))
            for group in report["groups"]:
                report_check.check_group(group, groups["stable"], groups[group["variant"]], f"{where}: {group['variant']}",
                                         metrics=METRICS, control="stable")
        return report

    def all_exposures_recorded() -> bool:
        report = api.get(f"/v1/experiments/{key}/report").json()
        return sum(report["exposed_units"].values()) + report["multiple_exposures"] == len(units) and \
            report["multiple_exposures"] == len(population.moved())

    poll_until(all_exposures_recorded, timeout=10)
    before = check("before the split moves")
    assert before["multiple_exposures"] == 0 and not before["multiple_exposures_warning"]

    in_state = set(psql(database_url, f"SELECT unit FROM report_units WHERE experiment_key = '{key}'").split())
    replace_experiment(a, key, lambda body: body["rules"][-1]["serve"].update(
        split=[{"variant": "stable", "weight": 20}, {"variant": "canary", "weight": 80}]))
    population.round()
    population.round()
    moved = population.moved()
    assert moved and all(population.seen[u] == ["stable", "canary"] for u in moved), dumps({u: population.seen[u] for u in moved})
    # Units that were in the state leave their groups.
    assert moved & in_state
    poll_until(all_exposures_recorded, timeout=10)
    moved_at = psql(database_url, "SELECT now()")
    after = check("after the split moved units")
    assert after["multiple_exposures_warning"]
    # Folded: a refresh whose watermark is past the move has taken the moved units out of the
    # state, and the numbers stay.
    poll_until(lambda: psql(database_url, f"SELECT watermark > '{moved_at}' FROM report_states WHERE experiment_key = '{key}'") == "t",
               timeout=20)
    remaining = psql(database_url, f"SELECT count(*) FROM report_units WHERE experiment_key = '{key}' AND unit = ANY('{{{','.join(sorted(moved))}}}')")
    assert remaining == "0", remaining
    check("after the fold")
