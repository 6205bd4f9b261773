"""Doc tests for docs/api.md: its command runs as written, the inputs it shows are accepted, and
the answers it shows are the server's — byte for byte where the page shows a real exchange (the
error, the assignment), and in shape where its numbers are invented (the report, the rollout
state, the rollout notice): the same field names at every level, so a renamed or added field
cannot go undocumented.
"""

from __future__ import annotations

import copy
import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from aviary_e2e import CHAT_RELEASE, Server, admin, create_experiment, expect, put_cohort
from test_docs import fenced

REPO_ROOT = Path(__file__).resolve().parents[2]
PAGE = (REPO_ROOT / "docs" / "api.md").read_text()
BLOCKS = fenced(PAGE)


def block_after(marker: str, lang: str | None = None) -> str:
    """The first fenced block after the text `marker` (of language `lang`, when given)."""
    offset = PAGE.index(marker)
    for found_lang, body in fenced(PAGE[offset:]):
        if lang is None or found_lang == lang:
            return body
    raise AssertionError(f"no block after {marker!r}")


def loads_fragment(text: str):
    """A documented JSON value; `"name": {…}` fragments become objects, `…` becomes null."""
    text = text.replace("{…}", "null").replace("[…]", "null").replace('"…"', "null").replace("…", "")
    text = text.strip()
    if text.startswith('"'):
        text = "{" + text + "}"
    return json.loads(text)


# Objects keyed by data (variant names), not by field names.
MAPS = {"report.exposed_units"}


def same_shape(doc, real, path: str = "$") -> list[str]:
    """Where a documented value's field names differ from the real one's (recursively)."""
    problems: list[str] = []
    if path in MAPS:
        return problems
    if isinstance(doc, dict) and isinstance(real, dict):
        if set(doc) != set(real):
            problems.append(f"{path}: documented {sorted(set(doc) - set(real))} not sent, "
                            f"sent {sorted(set(real) - set(doc))} not documented")
        for key in set(doc) & set(real):
            problems += same_shape(doc[key], real[key], f"{path}.{key}")
    elif isinstance(doc, list) and isinstance(real, list) and doc and real:
        problems += same_shape(doc[0], real[0], f"{path}[0]")
    return problems


@pytest.fixture(scope="module")
def running(aviary: Server) -> Server:
    """The metrics the page's examples name, and the README's experiment reporting one, started
    (revision 2)."""
    put_cohort(aviary, "internal", {"attr": "email", "ends_with": "@lobehub.com"})
    body = copy.deepcopy(CHAT_RELEASE)
    body["rules"] = [
        {"name": "staff", "when": {"cohort": "internal"}, "serve": {"variant": "canary"}},
        {"name": "everyone", "serve": {"split": [{"variant": "stable", "weight": 95}, {"variant": "canary", "weight": 5}]}},
    ]
    api = admin(aviary)
    for key, metric in [("answer_rating", {"kind": "mean", "event": "answer_rating"}),
                        ("error_rate", {"kind": "ratio", "numerator": "request_error", "denominator": "request"}),
                        ("latency_p99", {"kind": "quantile", "event": "response", "q": 0.99})]:
        expect(api.put(f"/v1/metrics/{key}", json=metric), 200, 201)
    # Reported on from the start, so that the report's example can be compared whatever runs first.
    body["metrics"] = {"primary": ["answer_rating"]}
    assert create_experiment(aviary, body)["revision"] == 2
    return aviary


def test_the_patch_example_runs(running: Server):
    sh = block_after("### Changing one field", "sh").replace("http://127.0.0.1:8080", running.url)
    result = subprocess.run(["bash", "-c", sh], env={"AVIARY_ADMIN_TOKEN": running.admin_token, "PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=30)
    answer = json.loads(result.stdout)
    assert answer["revision"] == 3 and answer["metrics"]["primary"] == ["answer_rating"], result.stdout


def test_the_error_example_is_what_the_server_answers(running: Server):
    shown = json.loads(block_after("Every error has one shape", "json").replace('"…"', "null"))
    # The experiment it describes: a second rule whose weights sum to 99.5.
    r = admin(running).post("/v1/experiments", json={
        "key": "errors-example", "variants": [{"key": "off"}, {"key": "on"}], "control": "off",
        "rules": [{"when": {"cohort": "internal"}, "serve": {"variant": "on"}},
                  {"serve": {"split": [{"variant": "off", "weight": 60}, {"variant": "on", "weight": 39.5}]}}]})
    real = expect(r, 400).json()
    assert real["error"]["code"] == shown["error"]["code"]
    assert real["error"]["details"] == shown["error"]["details"]
    assert set(real["error"]) == set(shown["error"])


def test_the_assignment_example_is_what_the_server_answers(running: Server):
    shown = block_after("The answer:\n")
    r = requests.get(running.url + "/v1/assign/chat-release", timeout=10, headers={
        "Authorization": f"Bearer {running.admin_token}", "X-Aviary-User": "u-42",
        "X-Aviary-Attr-Email": "ana@lobehub.com", "Cookie": "aviary_id=anon-1"})
    expect(r, 200)
    header_lines = [line for line in shown.splitlines() if ": " in line and not line.startswith(("{", " "))]
    for line in header_lines:
        name, value = line.split(": ", 1)
        assert r.headers.get(name) == value, (name, r.headers.get(name))
    body = json.loads(shown[shown.index("{"):].replace('"…"', '"anon-1"'))
    assert r.json() == body


def test_the_event_example_is_accepted(running: Server):
    event = json.loads(block_after("one event per line", "json").replace("6f1c2b9e-…", str(uuid.uuid4())))
    r = expect(requests.post(running.url + "/v1/events", json=[event], timeout=10,
                             headers={"Authorization": f"Bearer {running.admin_token}"}), 200)
    assert r.json() == {"accepted": 1, "duplicates": 0}


class Receiver(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        Receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_the_rollout_examples_are_accepted_and_have_the_answers_shape(running: Server):
    """The rollout definition is accepted as written (but its notice address, pointed here);
    the rollout state and the notice have the fields the page shows."""
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        rollout = loads_fragment(block_after("while its guardrails hold:", "json"))["rollout"]
        rollout["notify_url"] = f"http://127.0.0.1:{receiver.server_address[1]}/aviary"
        api = admin(running)
        # A copy of the README's experiment with the documented rollout, started (a rollout
        # begins when its experiment starts).
        body = {k: v for k, v in expect(api.get("/v1/experiments/chat-release"), 200).json().items()
                if k in ("variants", "control", "rules", "unit")}
        body.update(key="docs-ramp", salt="docs-ramp", rollout=rollout)
        created = create_experiment(running, body)
        assert created["rollout"]["steps"] == [5, 25, 50, 100] and created["status"] == "running"
        shown_state = loads_fragment(block_after("shows the live state:", "json"))["rollout_state"]
        deadline = time.monotonic() + 20
        while (state := expect(api.get("/v1/experiments/docs-ramp"), 200).json()["rollout_state"]) is None:
            assert time.monotonic() < deadline, "no rollout_state within 20 s"
            time.sleep(0.2)
        problems = same_shape({k: v for k, v in shown_state.items() if k != "guardrails"},
                              {k: v for k, v in state.items() if k != "guardrails"}, "rollout_state")
        assert not problems, problems

        expect(api.post("/v1/experiments/docs-ramp/rollback", json={"reason": "docs"}), 200)
        deadline = time.monotonic() + 20
        while not Receiver.bodies:
            assert time.monotonic() < deadline, "no notice within 20 s"
            time.sleep(0.1)
        shown_notice = loads_fragment(block_after("redirects are not followed", "json"))
        real_notice = dict(Receiver.bodies[0])
        assert not same_shape({k: v for k, v in shown_notice.items() if k != "rollout_state"},
                              {k: v for k, v in real_notice.items() if k != "rollout_state"}, "notice")
        assert set(shown_notice) == set(real_notice), (sorted(shown_notice), sorted(real_notice))
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_the_report_example_has_the_shape_of_a_report(running: Server):
    shown = json.loads(block_after("read it on experiments whose traffic goes", "json"))
    real = expect(admin(running).get("/v1/experiments/chat-release/report"), 200).json()
    problems = same_shape(shown, real, "report")
    assert not problems, problems
