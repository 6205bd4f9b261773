"""The fuzz reaches every operation (docs/api.md, "OpenAPI"): schemathesis runs every phase —
examples, coverage, fuzzing and stateful, the last following the links of /openapi.json from a
created experiment, cohort, metric or key to the routes that take its key — against a real
server holding seeded objects, with an admin key. No check may fail (no 5xx, every status and
body as the document says), and no operation may get only 401, 403 or 404: each is reached
past authentication and lookup.

`DELETE /v1/keys/{id}` runs in a second, later run: schemathesis learns key ids from answers
(the audit log's `actor_key_id`), and revoking the key it fuzzes with would turn every later
case into a 401."""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aviary_e2e import Api, Server, admin, canary_rollout, create_experiment, expect, put_cohort

MAX_EXAMPLES = os.environ.get("AVIARY_FUZZ_EXAMPLES", "10")
SEED = os.environ.get("AVIARY_FUZZ_SEED", "1")


def seed(server: Server) -> None:
    """Objects for every kind of route: a running experiment with events and a rollout waiting
    at its gate, a cohort, a metric, a client key."""
    api = admin(server)
    put_cohort(server, "staff", {"attr": "email", "ends_with": "@example.com"})
    expect(api.put("/v1/metrics/messages", json={"kind": "count", "event": "message"}), 200, 201)
    create_experiment(server, {
        "key": "seed", "variants": [{"key": "control", "value": "gpt-4"}, {"key": "treatment", "value": "qwen"}], "control": "control",
        "rules": [{"when": {"cohort": "staff"}, "serve": {"variant": "treatment"}},
                  {"serve": {"split": [{"variant": "control", "weight": 50}, {"variant": "treatment", "weight": 50}]}}],
        "metrics": {"primary": ["messages"]},
    })
    create_experiment(server, canary_rollout("gated", {"variant": "canary", "steps": [5, 100], "step_seconds": 3600, "approval_before": [100]}))
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(20):
        expect(api.get("/v1/assign/seed", headers={"X-Aviary-User": f"u{i}"}), 200)
    expect(api.post("/v1/events", json=[{"id": str(uuid.uuid4()), "type": "message", "user_id": f"u{i}", "ts": now} for i in range(20)]), 200)


def operations(document: dict) -> dict[tuple[str, str], re.Pattern]:
    """Each operation of the document, as the pattern its request paths match."""
    result = {}
    for path, item in document["paths"].items():
        pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$")
        for method in item:
            if method in ("get", "put", "post", "patch", "delete"):
                result[(method.upper(), path)] = pattern
    return result


def statuses(har_dir: Path, document: dict) -> dict[str, collections.Counter]:
    """The statuses each operation was answered with, from schemathesis's HAR reports."""
    ops = operations(document)
    seen: dict[str, collections.Counter] = {f"{m} {p}": collections.Counter() for m, p in ops}
    for har in glob.glob(str(har_dir / "*.json")):
        for entry in json.load(open(har, encoding="utf-8"))["log"]["entries"]:
            method = entry["request"]["method"]
            path = re.sub(r"^https?://[^/]+", "", entry["request"]["url"]).split("?", 1)[0]
            # The most specific template wins: /v1/experiments/{key}/report.csv over …/{key}.
            matching = [p for (m, p), pattern in ops.items() if m == method and pattern.match(path)]
            if matching:
                best = min(matching, key=lambda p: p.count("{"))
                seen[f"{method} {best}"][entry["response"]["status"]] += 1
    return seen


def schemathesis(server: Server, key: str, report: Path, *selection: str) -> subprocess.CompletedProcess:
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "run", f"{server.url}/openapi.json",
        "--checks", "not_a_server_error,status_code_conformance,response_schema_conformance",
        "--header", f"Authorization: Bearer {key}", "--generation-with-security-parameters", "false",
        "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--workers", "1", "--no-color",
        "--report", "har", "--report-dir", str(report), *selection,
    ]
    # One worker: see scripts/fuzz.
    return subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=str(report))


def test_every_operation_is_reached_and_none_fails(aviary: Server, tmp_path: Path) -> None:
    seed(aviary)
    key = expect(admin(aviary).post("/v1/keys", json={"role": "admin", "name": "fuzz"}), 201).json()["key"]
    document = expect(Api(aviary, None).get("/openapi.json"), 200).json()
    runs = [schemathesis(aviary, key, tmp_path, "--exclude-path", "/v1/keys/{id}"),
            schemathesis(aviary, key, tmp_path, "--include-path", "/v1/keys/{id}", "--include-path", "/v1/keys")]
    for run in runs:
        assert run.returncode == 0, f"schemathesis failed:\n{run.stdout[-30000:]}\n{run.stderr[-2000:]}\n{aviary.log_tail()}"
    seen = statuses(tmp_path, document)
    print("\n".join(f"{op}: {dict(sorted(counts.items()))}" for op, counts in sorted(seen.items())))
    # schemathesis leaves out the operation that serves the document it reads (OpenAPITests
    # check that one against the routes).
    seen.pop("GET /openapi.json")
    untested = sorted(op for op, counts in seen.items() if not counts)
    assert not untested, f"operations schemathesis never called: {untested}"
    unreached = {op: dict(counts) for op, counts in seen.items() if set(counts) <= {401, 403, 404}}
    assert not unreached, f"operations answered only 401/403/404: {unreached}"
    server_errors = {op: dict(counts) for op, counts in seen.items() if any(status >= 500 for status in counts)}
    assert not server_errors, server_errors
