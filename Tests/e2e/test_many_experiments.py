"""Answers every client can read with 300 running experiments (docs/api.md, "Assignment").

Python's `http.client` (under `requests` and `urllib`) refuses an answer with more than 100
header lines; Node refuses header blocks over 16 KiB and nginx's default buffers hold 4–8 KiB.
An answer for every experiment therefore sends at most 64 `X-Aviary-Variant-<key>` headers and
4 KiB of them with `X-Aviary-Assignments`, says how many it left out in `X-Aviary-Truncated`, and
keeps every assignment in its body; `?experiments=` asks for fewer, with all their headers.

Expected variants come from the independent bucketing of aviary_e2e.split_variant.
"""

from __future__ import annotations

import http.client
import json

import pytest

from aviary_e2e import Server, admin, create_client_key, expect, parallel, parse_sf_dictionary, split_variant

COUNT = 300
SPLIT = [("control", 50), ("treatment", 50)]
KEYS = [f"exp-{i:03d}" for i in range(COUNT)]


@pytest.fixture(scope="module")
def many(aviary: Server) -> Server:
    """`aviary` with 300 running experiments, each splitting everyone 50/50."""

    def create(api, key: str) -> None:
        expect(api.post("/v1/experiments", json={
            "key": key, "unit": "user_id",
            "variants": [{"key": "control", "value": False}, {"key": "treatment", "value": True}],
            "control": "control",
            "rules": [{"name": "everyone", "serve": {"split": [{"variant": v, "weight": w} for v, w in SPLIT]}}],
        }), 201)
        expect(api.post(f"/v1/experiments/{key}/start"), 200)

    parallel(admin(aviary), create, KEYS)
    return aviary


@pytest.fixture(scope="module")
def key(many: Server) -> str:
    return create_client_key(many, "many-experiments")


def raw_get(server: Server, path: str, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
    """GET with the standard library's client, which refuses more than 100 header lines."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def header_block(response: http.client.HTTPResponse) -> tuple[int, int]:
    """Header lines and bytes (`name: value` and CRLF each) of an answer, status line left out."""
    fields = response.getheaders()
    return len(fields), sum(len(n) + len(v) + 4 for n, v in fields)


def variant_headers(response: http.client.HTTPResponse) -> dict[str, str]:
    prefix = "x-aviary-variant-"
    return {n.lower()[len(prefix):]: v for n, v in response.getheaders() if n.lower().startswith(prefix)}


def test_every_experiment_fits_what_clients_read(many: Server, key: str):
    user = "reader-1"
    response, body = raw_get(many, "/v1/assign", {"X-API-Key": key, "X-Aviary-User": user})
    assert response.status == 200, body[:500]
    lines, size = header_block(response)
    assert lines <= 100 and size <= 8192, (lines, size)
    assignments = json.loads(body)["assignments"]
    assert sorted(assignments) == KEYS
    for k in KEYS:
        assert assignments[k]["variant"] == split_variant(k, user, SPLIT), k
    # The headers: the first experiments by key, agreeing with the body, the rest counted.
    sent = variant_headers(response)
    assert list(sent) == KEYS[:len(sent)] and 0 < len(sent) <= 64, list(sent)
    assert all(sent[k] == assignments[k]["variant"] for k in sent)
    assert response.getheader("X-Aviary-Truncated") == str(COUNT - len(sent))
    dictionary = parse_sf_dictionary(response.getheader("X-Aviary-Assignments"))
    assert {k: str(v) for k, v in dictionary.items()} == sent


def test_experiments_selects_exactly_those(many: Server, key: str):
    user = "reader-2"
    response, body = raw_get(many, "/v1/assign?experiments=exp-007,exp-123", {"X-API-Key": key, "X-Aviary-User": user})
    assert response.status == 200, body[:500]
    assignments = json.loads(body)["assignments"]
    expected = {k: split_variant(k, user, SPLIT) for k in ("exp-007", "exp-123")}
    assert {k: a["variant"] for k, a in assignments.items()} == expected
    assert variant_headers(response) == expected
    assert response.getheader("X-Aviary-Truncated") is None
    assert parse_sf_dictionary(response.getheader("X-Aviary-Assignments")) == expected


def test_an_unknown_name_is_a_400_naming_it(many: Server, key: str):
    response, body = raw_get(many, "/v1/assign?experiments=exp-007,exp-999", {"X-API-Key": key, "X-Aviary-User": "u"})
    assert response.status == 400, body[:500]
    error = json.loads(body)["error"]
    assert error["code"] == "invalid_request"
    assert [d["path"] for d in error["details"]] == ["experiments[1]"]
    assert '"exp-999"' in error["message"], error


def test_post_selects_and_bounds_the_same_way(many: Server, key: str):
    api = admin(many)
    chosen = expect(api.post("/v1/assign", json={"context": {"user_id": "reader-3"}, "experiments": ["exp-042", "exp-299"]}), 200)
    assert sorted(chosen.json()["assignments"]) == ["exp-042", "exp-299"]
    assert "X-Aviary-Truncated" not in chosen.headers
    everything = expect(api.post("/v1/assign", json={"context": {"user_id": "reader-3"}}), 200)
    assert len(everything.json()["assignments"]) == COUNT
    assert int(everything.headers["X-Aviary-Truncated"]) > 0
    unknown = expect(api.post("/v1/assign", json={"context": {"user_id": "u"}, "experiments": ["exp-001", "nope"]}), 400)
    assert [d["path"] for d in unknown.json()["error"]["details"]] == ["experiments[1]"]
