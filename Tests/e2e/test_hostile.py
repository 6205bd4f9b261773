"""Hostile clients, checked from outside (docs/security.md, "Hostile input"): a client key ships in
every browser, so anything a browser can send reaches the server. Every route and every string
field gets NUL, escaped lone surrogates, invalid UTF-8, 1 MiB strings, deep nesting, 1e400, -0,
huge integers, dates in year 1 and 99999, duplicate keys and wrong types: each answer is below
500, a 400 names the path of the problem, a refused write stores nothing, and afterwards good
traffic still flows — exposures reach the report and events are stored.

And the pipelines themselves: one exposure the database refuses, injected below the HTTP layer,
is dropped and counted (`aviary_rejected_total`) while the rest of its batch lands."""

from __future__ import annotations

import copy
import http.client
import json
import re
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aviary_e2e import Api, Server, admin, canary_rollout, create_client_key, create_experiment, eventually, expect
from conftest import psql

NOW = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
MIB = "x" * (1 << 20)

# Values put in place of each field (JSON text, spliced into the body as it is sent).
HOSTILE_VALUES: list[tuple[str, str]] = [
    ("nul", json.dumps("evil\u0000")),
    ("nul-only", '"\\u0000"'),
    ("lone-surrogate", '"\\ud800"'),
    ("lone-low-surrogate", '"x\\udc00y"'),
    ("mib-string", json.dumps(MIB)),
    ("year-1", '"0001-01-01T00:00:00Z"'),
    ("year-99999", '"99999-01-01T00:00:00Z"'),
    ("1e400", "1e400"),
    ("minus-zero", "-0"),
    ("huge-integer", "123456789012345678901234567890"),
    ("deep", "[" * 200 + "]" * 200),
    ("object", '{"a": {"b": "\\u0000"}}'),
    ("array", '["x", 1, null]'),
    ("true", "true"),
    ("null", "null"),
]


def experiment_body(key: str) -> dict:
    return {
        "key": key, "name": "Hostile", "description": "a target", "salt": key,
        "variants": [{"key": "control", "value": {"model": "gpt-4"}, "name": "Control"}, {"key": "treatment", "value": "qwen"}],
        "control": "control",
        "rules": [{"name": "staff", "when": {"attr": "email", "ends_with": "@example.com"}, "serve": {"variant": "treatment"}},
                  {"serve": {"split": [{"variant": "control", "weight": 50}, {"variant": "treatment", "weight": 50}]}}],
    }


def event(unit: str, **fields: Any) -> dict:
    return {"id": str(uuid.uuid4()), "type": "message", "user_id": unit, "ts": NOW, "model": "gpt-4", "app_version": "1.2.3", **fields}


# (name, method, path, key kind, a valid body). Each leaf of the body is replaced in turn.
ROUTES: list[tuple[str, str, str, str, Any]] = [
    ("create experiment", "POST", "/v1/experiments", "admin", experiment_body("hostile-new")),
    ("replace experiment", "PUT", "/v1/experiments/target", "admin", experiment_body("target")),
    ("patch experiment", "PATCH", "/v1/experiments/target", "admin", {"description": "changed", "variants": experiment_body("t")["variants"]}),
    ("pause", "POST", "/v1/experiments/target/pause", "admin", {"reason": "looking"}),
    ("cohort", "PUT", "/v1/cohorts/hostile", "admin", {"name": "Staff", "description": "d", "condition": {"attr": "email", "ends_with": "@x.com"}}),
    ("metric", "PUT", "/v1/metrics/hostile", "admin", {"kind": "proportion", "event": "message", "where": {"gt": 1}, "name": "M"}),
    ("key", "POST", "/v1/keys", "admin", {"role": "client", "name": "a key"}),
    ("events", "POST", "/v1/events", "client", [event("ok-1"), event("ok-2", value=2, props={"k": "v"})]),
    ("assign", "POST", "/v1/assign", "client", {"context": {"user_id": "u1", "email": "a@b.c", "country": "DE"}, "experiments": ["target"]}),
    ("ofrep one", "POST", "/ofrep/v1/evaluate/flags/target", "client", {"context": {"targetingKey": "u1", "email": "a@b.c"}}),
    ("ofrep all", "POST", "/ofrep/v1/evaluate/flags", "client", {"context": {"targetingKey": "u1", "plan": "pro"}}),
    ("opt-out", "POST", "/v1/opt-out", "client", {"user_id": "u-opt"}),
]


def scalar_paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from scalar_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from scalar_paths(v, path + (i,))
    else:
        yield path


MARK = "\u2603hostile\u2603"


def with_marker(body: Any, path: tuple) -> str:
    """The body as JSON text with a marker where the value at `path` goes."""
    document = copy.deepcopy(body)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = MARK
    return json.dumps(document)


def send(server: Server, key: str, method: str, path: str, body: bytes, content_type: str = "application/json",
         extra: dict | None = None) -> tuple[int, bytes]:
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type, **(extra or {})}
    if method in ("PUT", "PATCH") and path.startswith("/v1/experiments/"):
        headers.setdefault("If-Match", '"999999"')  # stale: a valid body is a 412, never a write
    try:
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def target(aviary: Server) -> Server:
    create_experiment(aviary, experiment_body("target"))
    return aviary


def state(server: Server) -> str:
    """What a refused write must not change: the audit log's newest entry, the events and
    opt-outs stored, the objects' revisions."""
    return psql(server.database_url, """
        SELECT (SELECT coalesce(max(id), 0) FROM audit_log) || '/' || (SELECT count(*) FROM events) || '/' ||
               (SELECT count(*) FROM opt_outs) || '/' || (SELECT coalesce(string_agg(key || ':' || revision, ',' ORDER BY key), '') FROM experiments)
               || '/' || (SELECT count(*) FROM cohorts) || '/' || (SELECT count(*) FROM metrics) || '/' || (SELECT count(*) FROM api_keys)""")


def check_answer(what: str, status: int, text: bytes, before: str, server: Server) -> str:
    """Asserts what every answer to hostile input must be; returns the state to compare the next
    refused write with."""
    assert status < 500, f"{what}: {status} {text[:300]!r}\n{server.log_tail()}"
    if status < 400:
        return state(server)
    after = state(server)
    assert after == before, f"{what}: answered {status} yet changed {before} → {after}"
    answer = json.loads(text) if text else {}
    error = answer.get("error") if isinstance(answer, dict) else None
    if status == 400 and error and error["code"] in ("invalid_request", "invalid_events"):
        assert error["details"] and all(d["path"] is not None for d in error["details"]), (what, answer)
    return before


def good_traffic_flows(server: Server, client: Api, round: str) -> None:
    """The probe after the hostile traffic: new users' exposures reach the report and their
    events are stored."""
    api = admin(server)
    key = f"probe-{round}"
    create_experiment(server, {"key": key, "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "control": "a",
                               "rules": [{"serve": {"split": [{"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]}}]})
    for i in range(20):
        expect(client.get(f"/v1/assign/{key}", headers={"X-Aviary-User": f"{key}-{i}"}), 200)
    answer = expect(client.post("/v1/events", json=[event(f"{key}-{i}") for i in range(20)]), 200).json()
    assert answer == {"accepted": 20, "duplicates": 0}, answer
    eventually(lambda: exposed(api, key) == 20, timeout=5)


def test_every_field_of_every_route_survives_hostile_values(target: Server) -> None:
    client = create_client_key(target, "hostile")
    keys = {"admin": target.admin_token, "client": client}
    seen = 0
    before = state(target)
    for name, method, path, kind, body in ROUTES:
        for field in scalar_paths(body):
            template = with_marker(body, field)
            for label, value in HOSTILE_VALUES:
                payload = template.replace(json.dumps(MARK), value).encode()
                status, text = send(target, keys[kind], method, path, payload)
                before = check_answer(f"{name} {'.'.join(map(str, field))} = {label}", status, text, before, target)
                seen += 1
        # A member name with a NUL, invalid UTF-8, duplicate keys, a nesting bomb, the wrong
        # type and nothing, for the whole body.
        text = json.dumps(body)
        for label, payload in [
            ("nul-member", text.replace('"', '"\\u0000', 1).encode()),
            ("invalid-utf8", text.encode().replace(b'"', b'"\xff\xfe', 1)),
            ("duplicate-keys", (text[:-1] + ', "name": 1, "name": "\\u0000"}').encode() if isinstance(body, dict) else b"[1, 1]"),
            ("deep", b"[" * 100_000 + b"]" * 100_000),
            ("wrong-type", b'"a string"'),
            ("empty", b""),
        ]:
            status, answer = send(target, keys[kind], method, path, payload)
            before = check_answer(f"{name} {label}", status, answer, before, target)
            seen += 1
    assert seen > 1000, seen
    good_traffic_flows(target, Api(target, client), "matrix")


@pytest.mark.parametrize("query", [
    "user=evil%00", "attr.plan=%00", "user=" + "x" * 20_000, "experiments=target%00", "experiments=%ff%fe", "user=%ed%a0%80",
])
def test_hostile_query_strings_on_assignment_are_refused_and_queue_nothing(target: Server, query: str) -> None:
    client = create_client_key(target, "query")
    status, text = send(target, client, "GET", f"/v1/assign?{query}", b"")
    assert status < 500, (query, status, text[:300])
    if "%00" in query:
        assert status == 400, (query, status, text)
        details = json.loads(text)["error"]["details"]
        assert details and details[0]["path"] in ("user", "attr.plan", "experiments[0]"), details


@pytest.mark.parametrize("path", [
    "/v1/experiments/target/report?from=0001-01-01T00:00:00Z", "/v1/experiments/target/report?from=99999-01-01T00:00:00Z",
    "/v1/experiments/target/report?to=%00", "/v1/experiments/target/report?by=%00", "/v1/audit?before=99999999999999999999999",
    "/v1/audit?experiment=%00", "/v1/experiments?status=%00", "/v1/experiments/%00", "/v1/cohorts/%00", "/v1/experiments/target/revisions?x=%00",
    "/v1/experiments/target/report.csv?metric=%00", "/v1/experiments/target/report?from=1e400",
])
def test_hostile_query_strings_on_admin_routes_are_4xx(target: Server, path: str) -> None:
    status, text = send(target, target.admin_token, "GET", path, b"")
    assert status < 500, (path, status, text[:300])


def metric_value(server: Server, name: str, labels: dict[str, str]) -> float:
    text = expect(Api(server, None).get("/metrics"), 200).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def exposed(api: Api, key: str) -> int:
    report = expect(api.get(f"/v1/experiments/{key}/report"), 200).json()
    return sum(report["exposed_units"].values()) + report.get("multiple_exposures", 0)


def test_a_nul_unit_and_a_poisoned_exposure_batch_stop_nothing(aviary: Server) -> None:
    api = admin(aviary)
    create_experiment(aviary, {"key": "flow", "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "control": "a",
                               "rules": [{"serve": {"split": [{"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]}}]})
    client = Api(aviary, create_client_key(aviary, "flow"))
    # The request that once blinded a replica: OFREP with a NUL in the targeting key.
    answer = client.post("/ofrep/v1/evaluate/flags/flow", json={"context": {"targetingKey": "evil\u0000"}})
    assert answer.status_code == 400, answer.text
    assert answer.json()["errorCode"] == "INVALID_CONTEXT" and "context.targetingKey" in answer.json()["errorDetails"], answer.text

    # A row the database refuses for its content, below the HTTP layer: a constraint refuses one
    # unit, as PostgreSQL refuses text it cannot hold. A lock held for a moment keeps the
    # recorder's first write waiting, so the poisoned exposure and the users after it travel
    # in one batch.
    psql(aviary.database_url, "ALTER TABLE exposure_history ADD CONSTRAINT e2e_poison CHECK (unit <> 'poison-unit')")
    try:
        rejected = metric_value(aviary, "aviary_rejected_total", {"what": "exposure"})
        lock = threading.Thread(target=psql, args=(aviary.database_url, "BEGIN; LOCK TABLE exposures IN EXCLUSIVE MODE; SELECT pg_sleep(1.5); COMMIT;"))
        lock.start()
        time.sleep(0.3)
        try:
            for i in range(100):
                if i == 10:
                    expect(client.get("/v1/assign/flow", headers={"X-Aviary-User": "poison-unit"}), 200)
                expect(client.get("/v1/assign/flow", headers={"X-Aviary-User": f"good-{i}"}), 200)
        finally:
            lock.join(timeout=30)
        eventually(lambda: exposed(api, "flow") == 100, timeout=5, what="the 100 good users' exposures in the report")
        eventually(lambda: metric_value(aviary, "aviary_rejected_total", {"what": "exposure"}) == rejected + 1, timeout=5)
        log = open(aviary.log_path, encoding="utf-8", errors="replace").read()
        line = next(line for line in log.splitlines() if "refused exposures" in line)
        assert "experiment=flow" in line and "poison-unit" not in log, line
        assert int(re.search(r"batch=(\d+)", line).group(1)) > 1, line
    finally:
        psql(aviary.database_url, "ALTER TABLE exposure_history DROP CONSTRAINT e2e_poison")
    # The refused unit was dropped, not kept for ever: later ones still land.
    expect(client.get("/v1/assign/flow", headers={"X-Aviary-User": "after"}), 200)
    eventually(lambda: exposed(api, "flow") == 101, timeout=5)


@pytest.mark.parametrize("header", [
    b"X-Aviary-User: evil\x00unit", b"X-Aviary-User: \xff\xfe\xed\xa0\x80", b"Cookie: aviary_id=\xff\x00; internal=1",
    b"X-Aviary-Attr-Plan: " + b"p" * 20_000, b"X-Aviary-Region: \x7f\x01", b"User-Agent: \xc3\x28",
])
def test_hostile_headers_and_cookies_on_assignment_are_4xx_or_cut(target: Server, header: bytes) -> None:
    """Raw bytes, as no well-behaved client library would send them: the answer is below 500,
    and a 200 carries only storable text."""
    import socket

    client = create_client_key(target, "headers")
    host, port = target.url.removeprefix("http://").split(":")
    request = (b"GET /v1/assign/target HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + client.encode() + b"\r\n" + header +
               b"\r\nConnection: close\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0
    assert 0 < status < 500, (header[:60], answer[:300])
    if status == 200:
        assert b"\\u0000" not in answer, answer[:300]


# What a browser's form can carry, urlencoded (or not): NUL, invalid UTF-8 raw and encoded, an
# encoded lone surrogate, 1 MiB, a repeated field, an empty body.
HOSTILE_FORM_VALUES: list[tuple[str, bytes]] = [
    ("nul", b"evil%00"), ("raw-nul", b"evil\x00"), ("invalid-utf8", b"%ff%fe"), ("raw-invalid-utf8", b"\xff\xfe"),
    ("lone-surrogate", b"%ed%a0%80"), ("mib", b"x" * (1 << 20)), ("plus-and-percent", b"%%+%2"),
]


def test_dashboard_forms_survive_hostile_values(target: Server) -> None:
    """The dashboard's forms (docs/security.md, "Hostile input"): every field of the login and
    of each action gets each value; answers are below 500, a refused form changes nothing, and
    the dashboard and good traffic still work afterwards."""
    import requests

    base = target.url
    session = requests.Session()
    login = session.get(f"{base}/ui/login", timeout=10)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
    form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for field in ("csrf_token", "key"):
        for label, value in HOSTILE_FORM_VALUES:
            fields = {"csrf_token": csrf.encode(), "key": b"wrong"}
            fields[field] = value
            body = b"&".join(k.encode() + b"=" + v for k, v in fields.items())
            answer = session.post(f"{base}/ui/login", data=body, headers=form_headers, allow_redirects=False, timeout=30)
            assert answer.status_code < 500, (field, label, answer.status_code, answer.text[:300])
    answer = session.post(f"{base}/ui/login", data={"csrf_token": csrf, "key": target.admin_token}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    client = create_client_key(target, "forms")
    # A rollout keeps a pause's and a rollback's reason in its state.
    create_experiment(target, canary_rollout("forms", {"variant": "canary", "steps": [5, 100], "step_seconds": 3600, "approval_before": [100]}))
    before = state(target)
    for action, fields in [("pause", ("csrf_token", "reason")), ("rollback", ("csrf_token", "reason")), ("stop", ("csrf_token", "winner")),
                           ("resume", ("csrf_token",)), ("approve", ("csrf_token",))]:
        page = session.get(f"{base}/ui/experiments/forms/{action}", timeout=10)
        assert page.status_code == 200, (action, page.status_code, page.text[:300])
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        for field in fields:
            for label, value in HOSTILE_FORM_VALUES:
                sent = {"csrf_token": token.encode(), "reason": b"looking", "winner": b"control"}
                sent[field] = value
                body = b"&".join(k.encode() + b"=" + v for k, v in sent.items() if k in fields or k == "csrf_token")
                answer = session.post(f"{base}/ui/experiments/forms/{action}", data=body, headers=form_headers, allow_redirects=False, timeout=30)
                assert answer.status_code < 500, (action, field, label, answer.status_code, answer.text[:300], target.log_tail())
                if answer.status_code >= 400:
                    assert state(target) == before, (action, field, label, answer.status_code)
                before = state(target)
    for page in ("/ui/experiments", "/ui/experiments/forms", "/ui/audit"):
        assert session.get(base + page, timeout=10).status_code == 200, page
    good_traffic_flows(target, Api(target, client), "forms")
