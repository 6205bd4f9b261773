"""One stored row the running version cannot read stops nothing else (docs/operations.md,
"Unreadable stored objects"): with an experiment's row broken by an SQL edit, a pause of
another experiment still reaches assignment on every replica, a replica started then becomes
ready and serves the rest, `/readyz` and `/metrics` name the broken one, and a `PUT` of a whole
valid definition repairs it."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from aviary_e2e import Api, Server, admin, create_client_key, create_experiment, eventually, expect, key_everywhere
from conftest import psql


def split_experiment(key: str) -> dict:
    return {"key": key, "variants": [{"key": "control", "value": "old"}, {"key": "treatment", "value": "new"}], "control": "control",
            "rules": [{"serve": {"split": [{"variant": "control", "weight": 50}, {"variant": "treatment", "weight": 50}]}}]}


def unreadable_metrics(server: Server) -> set[tuple[str, str]]:
    text = expect(Api(server, None).get("/metrics"), 200).text
    return {(s.labels["kind"], s.labels["key"]) for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "aviary_config_unreadable" and s.value == 1}


def readyz(server: Server) -> dict:
    answer = Api(server, None).get("/readyz")
    assert answer.status_code == 200, answer.text
    return answer.json()


def assigned(client: Api, key: str, unit: str) -> dict:
    return expect(client.get(f"/v1/assign/{key}", headers={"X-Aviary-User": unit}), 200).json()["assignments"][key]


def test_a_broken_row_stops_nothing_and_a_put_repairs_it(aviary_factory) -> None:
    a, b = aviary_factory(), aviary_factory()
    api = admin(a)
    for key in ("good", "broken"):
        create_experiment(a, split_experiment(key))
    key = create_client_key(a, "unreadable")
    clients = {name: Api(server, key) for name, server in (("a", a), ("b", b))}
    units = [f"u{i}" for i in range(40)]
    key_everywhere(key, a, b)
    eventually(lambda: all(assigned(c, "broken", "u0")["in_experiment"] for c in clients.values()), timeout=5)
    served = {u: assigned(clients["a"], "broken", u)["variant"] for u in units}
    assert set(served.values()) == {"control", "treatment"}, served

    # An operator's SQL edit the validator refuses: the split no longer sums to 100.
    psql(a.database_url, """UPDATE experiments SET definition = jsonb_set(definition, '{rules,0,serve,split,0,weight}', '70')
                            WHERE key = 'broken'""")
    expect(api.post("/v1/experiments/good/pause"), 200)
    started = time.monotonic()
    for client in clients.values():
        eventually(lambda: assigned(client, "good", "u1")["reason"] == "not_running", timeout=1)
    assert time.monotonic() - started < 1.5
    # Both keep the broken experiment's last good version, and say so.
    for name, server in (("a", a), ("b", b)):
        assert {u: assigned(clients[name], "broken", u)["variant"] for u in units} == served, name
        eventually(lambda: [o["key"] for o in readyz(server)["unreadable"]] == ["broken"], timeout=6)
        assert readyz(server)["unreadable"][0]["kind"] == "experiment" and "100" in readyz(server)["unreadable"][0]["problem"]
        assert unreadable_metrics(server) == {("experiment", "broken")}

    # A replica started now never read it: ready within 10 s, serving the rest, and the broken
    # experiment's control to everyone, as a killed flag.
    started = time.monotonic()
    c = aviary_factory()
    assert time.monotonic() - started < 10
    client_c = Api(c, key)
    assert assigned(client_c, "good", "u1")["reason"] == "not_running"
    for u in units[:10]:
        answer = assigned(client_c, "broken", u)
        assert answer["variant"] == "control" and answer["value"] == "old" and not answer["in_experiment"], answer
    assert [o["key"] for o in readyz(c)["unreadable"]] == ["broken"]
    assert unreadable_metrics(c) == {("experiment", "broken")}

    # Reads and writes other than a repair say what is wrong; a PUT of a whole valid definition repairs.
    refused = expect(api.get("/v1/experiments/broken"), 409).json()["error"]
    assert refused["code"] == "stored_object_unreadable" and "100" in refused["message"], refused
    patch = api.patch("/v1/experiments/broken", json={"description": "x"}, headers={"If-Match": '"2"'})
    assert patch.status_code == 409 and patch.json()["error"]["code"] == "stored_object_unreadable", patch.text
    expect(api.post("/v1/experiments/broken/pause"), 409)
    revision = psql(a.database_url, "SELECT revision FROM experiments WHERE key = 'broken'").strip()
    repaired = expect(api.put("/v1/experiments/broken", json=split_experiment("broken"), headers={"If-Match": f'"{revision}"'}), 200).json()
    assert repaired["status"] == "running" and repaired["revision"] == int(revision) + 1, repaired
    for server in (a, b, c):
        eventually(lambda: readyz(server)["unreadable"] == [] and unreadable_metrics(server) == set(), timeout=2)
    for client in (*clients.values(), client_c):
        assert {u: assigned(client, "broken", u)["variant"] for u in units} == served
