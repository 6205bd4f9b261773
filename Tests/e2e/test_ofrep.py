"""OpenFeature Remote Evaluation Protocol (OFREP) against a real server.

Two layers:
- the real OpenFeature Python SDK (`openfeature-sdk`) with the real OFREP provider
  (`openfeature-provider-ofrep`, `OFREPProvider(base_url, headers_factory=…)`), as a user
  of Aviary would wire it;
- raw HTTP checks of the protocol's status codes and bodies (REFERENCES.md, OFREP v0.3).
"""

from __future__ import annotations

import copy

import pytest
from openfeature import api as openfeature_api
from openfeature.client import OpenFeatureClient
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from aviary_e2e import (
    CHAT_RELEASE,
    EVERYONE_SPLIT,
    Api,
    Server,
    admin,
    create_experiment,
    dumps,
    expect,
    put_cohort,
    split_variant,
)


# A plain boolean feature flag: one rule serving `on` to the `pro` plan; others get the control.
DARK_MODE = {
    "key": "dark-mode",
    "unit": "user_id",
    "variants": [{"key": "off", "value": False}, {"key": "on", "value": True}],
    "control": "off",
    "rules": [{"name": "pro", "when": {"attr": "plan", "eq": "pro"}, "serve": {"variant": "on"}}],
}

# Started, then paused: serves its control with reason DISABLED (or leaves the code default).
PAUSED_FLAG = {
    "key": "paused-flag",
    "unit": "user_id",
    "variants": [{"key": "off", "value": False}, {"key": "on", "value": True}],
    "control": "off",
    "rules": [{"name": "all", "serve": {"variant": "on"}}],
}

# One unconditional rule: the same variant for everyone, reason STATIC.
ALWAYS_ON = {
    "key": "always-on",
    "unit": "user_id",
    "variants": [{"key": "off", "value": False}, {"key": "on", "value": True}],
    "control": "off",
    "rules": [{"name": "all", "serve": {"variant": "on"}}],
}

# Stopped with a winner: the winner for everyone, reason STATIC.
SHIPPED = {
    "key": "shipped",
    "unit": "user_id",
    "variants": [{"key": "old", "value": "v1"}, {"key": "new", "value": "v2"}],
    "control": "old",
    "rules": [{"name": "half", "serve": {"split": [{"variant": "old", "weight": 50}, {"variant": "new", "weight": 50}]}}],
}

DOMAIN = "aviary-e2e"


@pytest.fixture(scope="module")
def server(aviary: Server) -> Server:
    put_cohort(aviary, "internal", {"attr": "cookie.internal", "eq": "1"})
    create_experiment(aviary, copy.deepcopy(CHAT_RELEASE))
    create_experiment(aviary, copy.deepcopy(DARK_MODE))
    create_experiment(aviary, copy.deepcopy(PAUSED_FLAG))
    doc = expect(admin(aviary).post("/v1/experiments/paused-flag/pause"), 200).json()
    assert doc["status"] == "paused", dumps(doc)
    create_experiment(aviary, copy.deepcopy(ALWAYS_ON))
    create_experiment(aviary, copy.deepcopy(SHIPPED))
    doc = expect(admin(aviary).post("/v1/experiments/shipped/stop", json={"winner": "new"}), 200).json()
    assert doc["status"] == "stopped" and doc.get("winner") == "new", dumps(doc)
    return aviary


@pytest.fixture(scope="module")
def of_client(server: Server, client_key: str):
    """An OpenFeature client backed by the OFREP provider, pointed at the server."""
    provider = OFREPProvider(server.url, headers_factory=lambda: {"Authorization": f"Bearer {client_key}"})
    openfeature_api.set_provider_and_wait(provider, domain=DOMAIN)
    yield openfeature_api.get_client(domain=DOMAIN)
    openfeature_api.clear_providers()


@pytest.fixture(scope="module")
def ofrep(server: Server, client_api) -> Api:
    return client_api(server)


# ---------------------------------------------------------------------------
# Through the OpenFeature SDK
# ---------------------------------------------------------------------------


def test_sdk_object_flag_for_staff_is_targeting_match(of_client: OpenFeatureClient):
    ctx = EvaluationContext(targeting_key="staff-1", attributes={"cookie.internal": "1"})
    details = of_client.get_object_details("chat-release", {"version": "code-default"}, ctx)
    assert details.error_code is None, details
    assert details.value == {"version": "v1.9.0"}, details
    assert details.variant == "canary", details
    assert details.reason == Reason.TARGETING_MATCH, details


def test_sdk_object_flag_split_is_split(of_client: OpenFeatureClient):
    for user in ("user-1", "user-2", "user-3"):
        expected = split_variant("chat-release", user, EVERYONE_SPLIT)
        details = of_client.get_object_details("chat-release", {}, EvaluationContext(targeting_key=user))
        assert details.error_code is None, details
        assert details.reason == Reason.SPLIT, details
        assert details.variant == expected, (user, details)
        assert details.value == {"version": "v1.8.0" if expected == "stable" else "v1.9.0"}, details


def test_sdk_boolean_flag(of_client: OpenFeatureClient):
    pro = EvaluationContext(targeting_key="user-7", attributes={"plan": "pro"})
    details = of_client.get_boolean_details("dark-mode", False, pro)
    assert details.error_code is None, details
    assert details.value is True, details
    assert details.variant == "on", details
    assert details.reason == Reason.TARGETING_MATCH, details
    assert of_client.get_boolean_value("dark-mode", False, pro) is True

    # No rule matches: the control, reason DEFAULT.
    free = of_client.get_boolean_details("dark-mode", True, EvaluationContext("user-7", {"plan": "free"}))
    assert free.error_code is None, free
    assert free.value is False and free.variant == "off", free
    assert free.reason == Reason.DEFAULT, free


def test_sdk_paused_flag_is_disabled_or_code_default(of_client: OpenFeatureClient):
    # The code default (True) differs from the control's value (False) on purpose.
    details = of_client.get_boolean_details("paused-flag", True, EvaluationContext(targeting_key="user-1"))
    assert details.error_code is None, details
    assert details.reason == Reason.DISABLED or details.value is True, details
    if details.value is not True:  # a value was sent: it must be the control's
        assert (details.value, details.variant) == (False, "off"), details


def test_sdk_static_flags(of_client: OpenFeatureClient):
    ctx = EvaluationContext(targeting_key="user-3")
    always = of_client.get_boolean_details("always-on", False, ctx)
    assert (always.error_code, always.value, always.variant, always.reason) == (None, True, "on", Reason.STATIC), always
    shipped = of_client.get_string_details("shipped", "v0", ctx)
    assert (shipped.error_code, shipped.value, shipped.variant, shipped.reason) == (None, "v2", "new", Reason.STATIC), shipped


def test_sdk_unknown_flag_is_flag_not_found(of_client: OpenFeatureClient):
    details = of_client.get_string_details("no-such-flag", "fallback", EvaluationContext(targeting_key="user-1"))
    assert details.value == "fallback", details
    assert details.error_code == ErrorCode.FLAG_NOT_FOUND, details
    assert details.reason == Reason.ERROR, details


def test_sdk_missing_targeting_key(of_client: OpenFeatureClient):
    details = of_client.get_object_details("chat-release", {"version": "x"}, EvaluationContext(attributes={"a": "b"}))
    assert details.value == {"version": "x"}, details
    assert details.error_code == ErrorCode.TARGETING_KEY_MISSING, details


# ---------------------------------------------------------------------------
# Raw protocol
# ---------------------------------------------------------------------------


def test_single_flag_success_shape(ofrep: Api):
    r = expect(ofrep.post("/ofrep/v1/evaluate/flags/chat-release",
                          json={"context": {"targetingKey": "user-123"}}), 200)
    body = r.json()
    assert {"key", "value", "reason", "variant", "metadata"} <= set(body), dumps(body)
    assert body["key"] == "chat-release"
    assert body["reason"] == "SPLIT"
    assert body["variant"] == split_variant("chat-release", "user-123", EVERYONE_SPLIT)
    assert body["value"] == {"version": "v1.8.0" if body["variant"] == "stable" else "v1.9.0"}
    assert isinstance(body["metadata"], dict)
    assert r.headers["Content-Type"].startswith("application/json")

    # X-API-Key is accepted as well as Authorization: Bearer.
    api_key = Api(ofrep.server, ofrep.key, header="x-api-key")
    expect(api_key.post("/ofrep/v1/evaluate/flags/dark-mode", json={"context": {"targetingKey": "u"}}), 200)


def test_missing_targeting_key_is_400(ofrep: Api):
    r = expect(ofrep.post("/ofrep/v1/evaluate/flags/chat-release", json={"context": {"plan": "pro"}}), 400)
    body = r.json()
    assert body.get("key") == "chat-release", dumps(body)
    assert body.get("errorCode") == "TARGETING_KEY_MISSING", dumps(body)
    assert isinstance(body.get("errorDetails", ""), str), dumps(body)


def test_invalid_json_is_parse_error(ofrep: Api):
    r = expect(ofrep.post("/ofrep/v1/evaluate/flags/chat-release", data=b'{"context": {"targetingKey": ',
                          headers={"Content-Type": "application/json"}), 400)
    assert r.json().get("errorCode") == "PARSE_ERROR", r.text


def test_unknown_flag_is_404(ofrep: Api):
    r = expect(ofrep.post("/ofrep/v1/evaluate/flags/no-such-flag", json={"context": {"targetingKey": "u"}}), 404)
    body = r.json()
    assert body.get("key") == "no-such-flag", dumps(body)
    assert body.get("errorCode") == "FLAG_NOT_FOUND", dumps(body)
    assert "errorDetails" in body, dumps(body)


def test_bulk_with_etag(ofrep: Api):
    request = {"context": {"targetingKey": "user-123"}}
    r = expect(ofrep.post("/ofrep/v1/evaluate/flags", json=request), 200)
    etag = r.headers.get("ETag")
    assert etag, dict(r.headers)
    flags = r.json()["flags"]
    by_key = {f["key"]: f for f in flags}
    assert {"chat-release", "dark-mode"} <= set(by_key), dumps(flags)
    assert by_key["chat-release"]["variant"] == split_variant("chat-release", "user-123", EVERYONE_SPLIT)
    assert by_key["dark-mode"]["value"] is False and by_key["dark-mode"]["variant"] == "off", dumps(by_key)

    same = expect(ofrep.post("/ofrep/v1/evaluate/flags", json=request, headers={"If-None-Match": etag}), 304)
    assert same.content == b""

    # A context that changes an answer (dark-mode turns on for plan=pro) must not get a 304.
    changed = {"context": {"targetingKey": "user-123", "plan": "pro"}}
    other = expect(ofrep.post("/ofrep/v1/evaluate/flags", json=changed, headers={"If-None-Match": etag}), 200)
    assert other.headers.get("ETag") and other.headers["ETag"] != etag, dict(other.headers)
    assert {f["key"]: f for f in other.json()["flags"]}["dark-mode"]["value"] is True, other.text


def test_no_key_is_401_without_body(server: Server):
    anonymous = Api(server, None)
    for path in ("/ofrep/v1/evaluate/flags/chat-release", "/ofrep/v1/evaluate/flags"):
        r = expect(anonymous.post(path, json={"context": {"targetingKey": "u"}}), 401)
        assert r.content == b"", (path, r.text)
