"""Hardening, checked from outside (docs/security.md): notices only to allowed hosts, signed
and never redirected; a per-key rate limit that leaves assignment alone; a body over the limit
answered with a 413 the client can read."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time

import pytest

from aviary_e2e import Api, Server, admin, canary_rollout, create_client_key, create_experiment, expect, poll_until
from webhook_receiver import WebhookReceiver as Receiver

SECRET = "notify-secret-0123456789abcdef"
RATE = 20


@pytest.fixture(scope="module")
def guarded(aviary_factory) -> Server:
    return aviary_factory(AVIARY_NOTIFY_HOSTS="127.0.0.1, hooks.internal:8443", AVIARY_NOTIFY_SECRET=SECRET, AVIARY_RATE_LIMIT=str(RATE))


def test_a_notify_url_outside_the_allowed_hosts_is_refused(guarded: Server) -> None:
    api = admin(guarded)
    for url in ("http://169.254.169.254/latest/meta-data", "http://hooks.internal/aviary", "https://127.0.0.2/x"):
        body = canary_rollout("ssrf", {"variant": "canary", "steps": [10, 100], "step_seconds": 60, "notify_url": url})
        error = expect(api.post("/v1/experiments", json=body), 400).json()["error"]
        assert [d["path"] for d in error["details"]] == ["rollout.notify_url"], error
        assert "AVIARY_NOTIFY_HOSTS" in error["details"][0]["message"]
    expect(api.get("/v1/experiments/ssrf"), 404)
    ok = canary_rollout("allowed-port", {"variant": "canary", "steps": [10, 100], "step_seconds": 60, "notify_url": "https://hooks.internal:8443/a"})
    expect(api.post("/v1/experiments", json=ok), 201)


def test_notices_are_signed_and_never_redirected(guarded: Server) -> None:
    elsewhere = Receiver()
    redirecting = Receiver(redirect_to=elsewhere.url)
    direct = Receiver()
    try:
        api = admin(guarded)
        for key, receiver in (("signed", direct), ("redirected", redirecting)):
            create_experiment(guarded, canary_rollout(key, {"variant": "canary", "steps": [10, 100], "step_seconds": 3600, "notify_url": receiver.url}))
            expect(api.post(f"/v1/experiments/{key}/rollback", json={"reason": "checking the signature"}), 200)
        poll_until(lambda: direct.deliveries, timeout=10)
        headers, body = direct.deliveries[0]
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-aviary-signature"], expected), (headers, body)
        assert json.loads(body)["experiment"] == "signed" and headers["x-aviary-delivery"]
        # The 302 is a failed delivery, retried; the host it points to never hears of it.
        poll_until(lambda: len(redirecting.deliveries) >= 2, timeout=10)
        assert elsewhere.deliveries == []
        deliveries = {h["x-aviary-delivery"] for h, _ in redirecting.deliveries}
        assert len(deliveries) == 1, deliveries  # one notice, the same id on every attempt
    finally:
        for r in (elsewhere, redirecting, direct):
            r.close()


def test_a_burst_over_the_limit_gets_429_while_assignment_answers(guarded: Server) -> None:
    client = Api(guarded, create_client_key(guarded))
    create_experiment(guarded, {"key": "limited", "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "control": "a",
                                "rules": [{"serve": {"split": [{"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]}}]})
    api = admin(guarded)
    statuses, refused = [], None
    for i in range(5 * RATE):
        r = api.get("/v1/experiments/limited")
        statuses.append(r.status_code)
        if r.status_code == 429 and refused is None:
            refused = r
        # Assignment carries the product's traffic: never limited.
        expect(client.get("/v1/assign/limited", headers={"X-Aviary-User": f"u{i}"}), 200)
    assert refused is not None, statuses
    assert int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    assert statuses.count(200) >= 2 * RATE, statuses  # the burst passed first


def test_a_body_over_the_limit_is_a_413_the_client_reads(guarded: Server) -> None:
    # The admin key's bucket, emptied by the burst above, holds 2 × RATE and refills at RATE a
    # second: after 2 s and a margin it is full again whatever the machine's load (a poll that
    # took the first refilled token left the next request a 429).
    time.sleep(2 * RATE / RATE + 0.5)
    key = create_client_key(guarded)
    body = b"[" + b",".join([b'{"type":"x","user_id":"u","ts":"2026-11-29T00:00:00Z","props":{"pad":"' + b"p" * 1000 + b'"}}'] * 6000) + b"]"
    assert len(body) > 6 * 1024 * 1024

    def paced():
        # As a client on a real network sends: in pieces, still sending when the server has
        # read past its limit.
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]
            time.sleep(0.001)

    host, port = guarded.url.removeprefix("http://").split(":")
    for attempt in range(20):
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json", "Content-Length": str(len(body))}
        try:
            connection.request("POST", "/v1/events", body=paced(), headers=headers)
            answer = connection.getresponse()
            status, text = answer.status, answer.read()
        finally:
            connection.close()
        assert status == 413, (attempt, status, text[:200])
        assert json.loads(text)["error"]["code"] == "payload_too_large"
