"""SDK-less assignment (docs/api.md, "Assignment") against real servers: two replicas on one database.

Expected variants are computed here with an independent implementation of docs/api.md's bucketing
(aviary_e2e.bucket), so these tests check exact stickiness, not only proportions.
"""

from __future__ import annotations

import copy
from collections import Counter

import pytest

from aviary_e2e import (
    CHAT_RELEASE,
    EAST_SPLIT,
    EVERYONE_SPLIT,
    Api,
    Server,
    admin,
    bucket,
    create_experiment,
    dumps,
    expect,
    parallel,
    parse_sf_dictionary,
    poll_until,
    put_cohort,
    replace_experiment,
    split_variant,
)

VALUES = {"stable": {"version": "v1.8.0"}, "canary": {"version": "v1.9.0"}}

# A second experiment whose split the replication test rewrites, so chat-release stays as
# defined above for every other test whatever the order.
RAMP_CHECK = {
    "key": "ramp-check",
    "unit": "user_id",
    "variants": [{"key": "stable", "value": False}, {"key": "canary", "value": True}],
    "control": "stable",
    "rules": [{"name": "everyone",
               "serve": {"split": [{"variant": "stable", "weight": 95}, {"variant": "canary", "weight": 5}]}}],
}

REPLICATION_DEADLINE = 1.0  # seconds: every replica follows a write within a second (docs/api.md)
POLL_INTERVAL = 0.05


@pytest.fixture(scope="module")
def servers(aviary: Server, aviary_factory) -> tuple[Server, Server]:
    """Two replicas on one database, configured through A."""
    a = aviary
    b = aviary_factory()
    put_cohort(a, "internal", {"attr": "cookie.internal", "eq": "1"})
    doc = create_experiment(a, copy.deepcopy(CHAT_RELEASE))
    assert doc["status"] == "running", dumps(doc)
    create_experiment(a, copy.deepcopy(RAMP_CHECK))
    # Both replicas must have loaded the config before the tests start.
    for server in (a, b):
        api = Api(server, server.admin_token)

        def loaded() -> bool:
            r = api.get("/v1/assign", headers={"X-Aviary-User": "warm-up"})
            return r.status_code == 200 and {"chat-release", "ramp-check"} <= set(r.json()["assignments"])

        ok, _ = poll_until(loaded, timeout=5.0)
        assert ok, f"{server.url} never served both experiments"
    return a, b


@pytest.fixture(scope="module")
def a_client(servers, client_api) -> Api:
    return client_api(servers[0])


@pytest.fixture(scope="module")
def b_client(servers, client_api) -> Api:
    api = client_api(servers[1])
    # The client key was created on A; other replicas learn keys within their refresh
    # interval (docs/api.md: 2 s).
    ok, _ = poll_until(lambda: api.get("/v1/assign/chat-release").status_code == 200, timeout=5.0, interval=0.1)
    assert ok, "replica B never accepted the client key created on A"
    return api


def assign(api: Api, key: str = "chat-release", **headers: str) -> dict:
    """`GET /v1/assign/{key}` with the given headers (underscores → dashes); the assignment."""
    hdrs = {k.replace("_", "-"): v for k, v in headers.items()}
    r = expect(api.get(f"/v1/assign/{key}", headers=hdrs), 200)
    body = r.json()
    assert key in body["assignments"], dumps(body)
    return body["assignments"][key]


# ---------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------


def test_internal_cookie_always_gets_canary(a_client: Api):
    for i in range(50):
        user = f"staff-{i}"
        got = assign(a_client, X_Aviary_User=user, Cookie="internal=1")
        assert got["variant"] == "canary", (user, got)
        assert got["reason"] == "rule:staff", (user, got)
        assert got["value"] == VALUES["canary"], got
        assert got["in_experiment"] is True, got


def test_region_east_split_matches_spec_bucketing(a_client: Api):
    users = [f"east-{i}" for i in range(2000)]
    answers = parallel(a_client, lambda api, u: assign(api, X_Aviary_User=u, X_Aviary_Region="cn-east"), users)
    counts: Counter[str] = Counter()
    mismatches = []
    for user, got in zip(users, answers):
        assert got["reason"] == "rule:east", (user, got)
        counts[got["variant"]] += 1
        expected = split_variant("chat-release", user, EAST_SPLIT)
        if got["variant"] != expected:
            mismatches.append((user, bucket("chat-release", user), got["variant"], expected))
    share = counts["canary"] / len(users)
    assert 0.20 <= share <= 0.30, f"canary share {share:.3f} in cn-east, expected ~0.25 ({counts})"
    assert not mismatches, f"{len(mismatches)} users differ from the documented bucketing, e.g. {mismatches[:5]}"


def test_region_from_attribute_header_and_query(a_client: Api):
    user = "east-attr-1"
    by_region = assign(a_client, X_Aviary_User=user, X_Aviary_Region="cn-east")
    by_attr = assign(a_client, X_Aviary_User=user, X_Aviary_Attr_Region="cn-east")
    r = expect(a_client.get("/v1/assign/chat-release", params={"user": user, "attr.region": "cn-east"}), 200)
    by_query = r.json()["assignments"]["chat-release"]
    assert by_region["reason"] == by_attr["reason"] == by_query["reason"] == "rule:east"
    assert by_region["variant"] == by_attr["variant"] == by_query["variant"]
    assert r.json()["unit"]["user_id"] == user


def test_everyone_else_follows_the_95_5_split(a_client: Api):
    for i in range(100):
        user = f"plain-{i}"
        got = assign(a_client, X_Aviary_User=user)
        assert got["reason"] == "rule:everyone", got
        assert got["variant"] == split_variant("chat-release", user, EVERYONE_SPLIT), (user, got)


# ---------------------------------------------------------------------------
# Replicas
# ---------------------------------------------------------------------------


def test_sticky_across_two_replicas(a_client: Api, b_client: Api):
    users = [f"sticky-{i}" for i in range(200)]
    on_a = parallel(a_client, lambda api, u: assign(api, X_Aviary_User=u)["variant"], users)
    on_b = parallel(b_client, lambda api, u: assign(api, X_Aviary_User=u)["variant"], users)
    differ = [(u, va, vb) for u, va, vb in zip(users, on_a, on_b) if va != vb]
    assert not differ, f"replicas disagree for {len(differ)} users: {differ[:5]}"
    wrong = [(u, va) for u, va in zip(users, on_a) if va != split_variant("chat-release", u, EVERYONE_SPLIT)]
    assert not wrong, f"{len(wrong)} users differ from the documented bucketing: {wrong[:5]}"


def test_config_write_on_a_is_served_by_b_within_one_second(servers, b_client: Api):
    a, _b = servers
    # Users that are `stable` under 95/5 now and must all turn `canary` under 0/100.
    users = [u for u in (f"ramp-{i}" for i in range(200))
             if split_variant("ramp-check", u, EVERYONE_SPLIT) == "stable"][:5]
    for user in users:
        assert assign(b_client, "ramp-check", X_Aviary_User=user)["variant"] == "stable"

    def all_canary(rules_split):
        def change(body: dict) -> None:
            body["rules"][0]["serve"] = {"split": rules_split}
        return change

    doc = replace_experiment(a, "ramp-check", all_canary(
        [{"variant": "stable", "weight": 0}, {"variant": "canary", "weight": 100}]))
    assert doc["revision"] >= 2, dumps(doc)

    def b_serves_canary() -> bool:
        return all(assign(b_client, "ramp-check", X_Aviary_User=u)["variant"] == "canary" for u in users)

    ok, elapsed = poll_until(b_serves_canary, timeout=REPLICATION_DEADLINE + 1.0, interval=POLL_INTERVAL)
    assert ok, f"replica B still serves the old split {REPLICATION_DEADLINE + 1.0:.1f} s after the write on A"
    assert elapsed <= REPLICATION_DEADLINE, f"replica B took {elapsed:.2f} s (> {REPLICATION_DEADLINE} s)"


def test_opt_out_and_back_on_both_replicas(a_client: Api, b_client: Api):
    user = "u-opt"
    normal = split_variant("chat-release", user, EVERYONE_SPLIT)
    before = assign(a_client, X_Aviary_User=user)
    assert before["reason"] == "rule:everyone" and before["variant"] == normal, before

    r = expect(a_client.post("/v1/opt-out", json={"user_id": user}), 200)
    assert r.json()["opted_out"] is True, r.text

    # Read-your-writes: the replica that answered `opted_out: true` must honour it at once.
    got = assign(a_client, X_Aviary_User=user)
    assert got["variant"] == "stable" and got["reason"] == "opt_out", (
        f"the replica that accepted the opt-out still assigns {got} right after answering 200")

    def b_opted_out() -> bool:
        return assign(b_client, X_Aviary_User=user)["reason"] == "opt_out"

    ok, elapsed = poll_until(b_opted_out, timeout=REPLICATION_DEADLINE + 1.0, interval=POLL_INTERVAL)
    assert ok and elapsed <= REPLICATION_DEADLINE, f"replica B: opt-out seen after {elapsed:.2f} s (ok={ok})"
    on_b = assign(b_client, X_Aviary_User=user)
    assert on_b["variant"] == "stable", on_b

    r = expect(a_client.delete("/v1/opt-out", json={"user_id": user}), 200)
    assert r.json()["opted_out"] is False, r.text
    back = assign(a_client, X_Aviary_User=user)
    assert back["reason"] == "rule:everyone" and back["variant"] == normal, (
        f"the replica that accepted the rejoin still assigns {back} right after answering 200")

    def b_back() -> bool:
        return assign(b_client, X_Aviary_User=user)["reason"] == "rule:everyone"

    ok, elapsed = poll_until(b_back, timeout=REPLICATION_DEADLINE + 1.0, interval=POLL_INTERVAL)
    assert ok and elapsed <= REPLICATION_DEADLINE, f"replica B: rejoin seen after {elapsed:.2f} s (ok={ok})"


# ---------------------------------------------------------------------------
# Cookie, headers, body=none
# ---------------------------------------------------------------------------


def set_cookies(response) -> list[str]:
    """Every Set-Cookie line of a response, unmerged."""
    return list(response.raw.headers.getlist("Set-Cookie"))


def test_set_cookie_minted_once_then_reused(a_client: Api):
    r = expect(a_client.get("/v1/assign", headers={"X-Aviary-User": "cookie-user"}), 200)
    cookies = [c for c in set_cookies(r) if c.strip().lower().startswith("aviary_id=")]
    assert len(cookies) == 1, f"expected one aviary_id Set-Cookie, got {set_cookies(r)}"
    first, *attrs = [part.strip() for part in cookies[0].split(";")]
    minted = first.split("=", 1)[1]
    assert minted, cookies[0]
    attributes = {}
    for attr in attrs:
        name, _, value = attr.partition("=")
        attributes[name.strip().lower()] = value.strip()
    # Attribute names and the SameSite value are case-insensitive (RFC 6265); nothing else.
    attributes["samesite"] = attributes.get("samesite", "").lower()
    assert attributes == {"path": "/", "max-age": "31536000", "samesite": "lax", "httponly": ""}, (
        f"Set-Cookie: {cookies[0]}")
    assert r.json()["unit"]["anonymous_id"] == minted, r.text

    again = expect(a_client.get("/v1/assign", headers={"X-Aviary-User": "cookie-user",
                                                       "Cookie": f"aviary_id={minted}"}), 200)
    assert not [c for c in set_cookies(again) if c.lower().startswith("aviary_id=")], set_cookies(again)
    assert again.json()["unit"]["anonymous_id"] == minted
    assert again.json()["unit"]["user_id"] == "cookie-user"


def check_assignment_headers(r, expected_variant: str) -> None:
    assert r.headers.get("X-Aviary-Variant-chat-release") == expected_variant, dict(r.headers)
    raw = r.headers.get("X-Aviary-Assignments")
    assert raw is not None, dict(r.headers)
    members = parse_sf_dictionary(raw)
    assert members.get("chat-release") == expected_variant, f"X-Aviary-Assignments: {raw!r}"
    directives = [d.strip().lower() for d in r.headers.get("Cache-Control", "").split(",")]
    assert "no-store" in directives, r.headers.get("Cache-Control")


def test_assignment_headers_and_body(a_client: Api):
    staff = {"X-Aviary-User": "u-42", "Cookie": "internal=1"}
    r = expect(a_client.get("/v1/assign", headers=staff), 200)
    check_assignment_headers(r, "canary")
    body = r.json()
    assert body["unit"]["user_id"] == "u-42"
    chat = body["assignments"]["chat-release"]
    assert {k: chat.get(k) for k in ("variant", "value", "reason", "in_experiment")} == {
        "variant": "canary", "value": VALUES["canary"], "reason": "rule:staff", "in_experiment": True,
    }, dumps(body)
    # Every experiment in the body is in the dictionary header, with the same variant.
    members = parse_sf_dictionary(r.headers["X-Aviary-Assignments"])
    assert members == {k: v["variant"] for k, v in body["assignments"].items()}, (members, body)
    assert r.headers["Content-Type"].startswith("application/json")

    one = expect(a_client.get("/v1/assign/chat-release", headers=staff), 200)
    check_assignment_headers(one, "canary")
    assert set(one.json()["assignments"]) == {"chat-release"}


def test_body_none_is_204_with_headers(a_client: Api):
    r = expect(a_client.get("/v1/assign/chat-release?body=none",
                            headers={"X-Aviary-User": "u-42", "Cookie": "internal=1"}), 204)
    assert r.content == b""
    check_assignment_headers(r, "canary")

    stable_user = next(u for u in (f"p-{i}" for i in range(100))
                       if split_variant("chat-release", u, EVERYONE_SPLIT) == "stable")
    r = expect(a_client.get("/v1/assign/chat-release", params={"body": "none"},
                            headers={"X-Aviary-User": stable_user}), 204)
    assert r.content == b""
    check_assignment_headers(r, "stable")


def test_unknown_experiment_is_404(a_client: Api):
    r = expect(a_client.get("/v1/assign/no-such-experiment", headers={"X-Aviary-User": "u-1"}), 404)
    assert r.json()["error"]["code"] == "not_found", r.text
    expect(a_client.get("/v1/assign/no-such-experiment?body=none", headers={"X-Aviary-User": "u-1"}), 404)


def test_post_assign_equals_get_with_headers(a_client: Api):
    for user, region in (("u-1", "cn-east"), ("u-2", "cn-east"), ("u-3", None)):
        headers = {"X-Aviary-User": user, "Cookie": "aviary_id=anon-fixed-1"}
        context = {"user_id": user, "anonymous_id": "anon-fixed-1"}
        if region:
            headers["X-Aviary-Region"] = region
            context["region"] = region
        got = expect(a_client.get("/v1/assign", headers=headers), 200).json()
        posted = expect(a_client.post("/v1/assign", json={"context": context}), 200).json()
        assert posted["assignments"] == got["assignments"], (user, dumps(posted), dumps(got))
        assert posted["unit"]["user_id"] == user
        only = expect(a_client.post("/v1/assign", json={"context": context, "experiments": ["chat-release"]}), 200)
        assert only.json()["assignments"] == {"chat-release": got["assignments"]["chat-release"]}, only.text
    # The exact shape the brief names, region east:
    r = expect(a_client.post("/v1/assign", json={"context": {"user_id": "u-1", "region": "cn-east"}}), 200)
    chat = r.json()["assignments"]["chat-release"]
    assert chat["reason"] == "rule:east"
    assert chat["variant"] == split_variant("chat-release", "u-1", EAST_SPLIT)


# ---------------------------------------------------------------------------
# Authentication
# ---------------------------------------------------------------------------


def test_keys_required_and_client_key_is_not_admin(servers, client_key: str):
    a, _ = servers
    anonymous = Api(a, None)
    expect(anonymous.get("/v1/assign", headers={"X-Aviary-User": "u-1"}), 401)
    expect(anonymous.get("/v1/assign/chat-release?body=none"), 401)
    expect(anonymous.post("/v1/opt-out", json={"user_id": "u-1"}), 401)
    expect(Api(a, "avk_" + "0" * 48).get("/v1/assign"), 401)

    client = Api(a, client_key)
    expect(client.get("/v1/experiments"), 403)
    expect(client.post("/v1/keys", json={"role": "admin"}), 403)
    expect(client.put("/v1/cohorts/internal", json={"condition": {"attr": "x", "exists": True}}), 403)

    # X-API-Key works as well as Authorization: Bearer; an admin key may assign too.
    expect(Api(a, client_key, header="x-api-key").get("/v1/assign/chat-release"), 200)
    expect(admin(a).get("/v1/assign/chat-release"), 200)
