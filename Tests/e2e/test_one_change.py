"""A change is one change whoever makes it (docs/architecture.md, "A write"): a pause by the
REST route, by the dashboard's button and by the rollout controller on a broken guardrail is
audited with the same action and the same shape, and posts the same notice; only the actor
(null for the controller) and the reason differ."""

from __future__ import annotations

import re
import time
import uuid
from datetime import datetime, timezone

import requests

from aviary_e2e import Api, admin, canary_rollout, create_client_key, create_experiment, eventually, expect
from webhook_receiver import WebhookReceiver as Hooks


def paused(server, key: str) -> bool:
    return expect(admin(server).get(f"/v1/experiments/{key}"), 200).json()["status"] == "paused"


def audit_shape(entry: dict) -> tuple:
    after, before = entry["after"], entry["before"]
    return (entry["action"], entry["target_type"], before["status"], after["status"], after["rollout_state"]["state"],
            after["rules"], sorted(after), sorted(after["rollout_state"]))


def notice_shape(body: dict) -> tuple:
    return (tuple(sorted(body)), body["event"], body["status"], body["variant"], body["rollout_state"]["state"], tuple(sorted(body["rollout_state"])))


def test_a_pause_is_one_change_from_rest_the_dashboard_and_the_controller(aviary_factory) -> None:
    server = aviary_factory(AVIARY_ROLLOUT_TICK="0.3")
    api = admin(server)
    hooks = Hooks()
    try:
        expect(api.put("/v1/metrics/error_rate", json={"kind": "ratio", "numerator": "request_error", "denominator": "request"}), 201, 200)
        plan = {"variant": "canary", "steps": [50, 100], "step_seconds": 3600, "on_breach": "pause", "notify_url": hooks.url,
                "guardrails": [{"metric": "error_rate", "max": 0.1}]}
        for key in ("by-rest", "by-dashboard", "by-controller"):
            create_experiment(server, canary_rollout(key, plan))

        expect(api.post("/v1/experiments/by-rest/pause", json={"reason": "looking into it"}), 200)

        session = requests.Session()
        login = session.get(f"{server.url}/ui/login", timeout=10)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        signed_in = session.post(f"{server.url}/ui/login", data={"csrf_token": csrf, "key": server.admin_token}, allow_redirects=False, timeout=10)
        assert signed_in.status_code == 303, signed_in.text
        page = session.get(f"{server.url}/ui/experiments/by-dashboard/pause", timeout=10)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        pressed = session.post(f"{server.url}/ui/experiments/by-dashboard/pause", data={"csrf_token": token, "reason": "looking into it"},
                               allow_redirects=False, timeout=10)
        assert pressed.status_code == 303, pressed.text
        assert paused(server, "by-dashboard")

        # The controller: canary units with errors on every request break the guardrail.
        client = Api(server, create_client_key(server))
        canaries = [u for u in (f"user-{i}" for i in range(200))
                    if expect(client.get("/v1/assign/by-controller", headers={"X-Aviary-User": u}), 200)
                    .json()["assignments"]["by-controller"]["variant"] == "canary"][:10]
        time.sleep(1.5)  # the exposures are written in the recorder's next batch
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        expect(client.post("/v1/events", json=[{"id": str(uuid.uuid4()), "type": t, "user_id": u, "ts": now} for u in canaries for t in ("request", "request_error")]), 200)
        eventually(lambda: paused(server, "by-controller"), timeout=10, what="the controller's pause")

        entries = {key: expect(api.get("/v1/audit", params={"experiment": key, "limit": 1}), 200).json()["entries"][0]
                   for key in ("by-rest", "by-dashboard", "by-controller")}
        shapes = {key: audit_shape(entry) for key, entry in entries.items()}
        assert shapes["by-rest"][0] == "experiment.pause", shapes["by-rest"]
        assert shapes["by-rest"] == shapes["by-dashboard"] == shapes["by-controller"], shapes
        assert entries["by-rest"]["actor_key_id"] == entries["by-dashboard"]["actor_key_id"] is not None
        assert entries["by-controller"]["actor_key_id"] is None
        revisions = {key: expect(api.get(f"/v1/experiments/{key}/revisions"), 200).json()["revisions"][-1]["action"] for key in entries}
        assert set(revisions.values()) == {"pause"}, revisions

        eventually(lambda: len(hooks.received) >= 3, timeout=10, what="three notices")
        notices = {body["experiment"]: body for body in hooks.received}
        assert sorted(notices) == sorted(entries), notices
        assert len({notice_shape(body) for body in notices.values()}) == 1, notices
        assert notices["by-rest"]["reason"] == notices["by-dashboard"]["reason"] == "looking into it"
        assert "error_rate" in notices["by-controller"]["reason"]
        # The rollout's history says the same of each.
        for key in entries:
            history = expect(api.get(f"/v1/experiments/{key}/report"), 200).json()["rollout"]["history"]
            assert history[-1]["event"] == "paused", (key, history)
    finally:
        hooks.close()
