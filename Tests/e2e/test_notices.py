"""Notices are never lost (docs/api.md, "The notice"): a rollback's notice is written in the
rollback's own transaction (the outbox) and delivered at least once by whichever server holds
its lease, with one delivery id on every attempt — also when the server that decided the
rollback is killed during the retries. `GET /v1/experiments/{key}/notices` shows each notice's
delivery, and a pause posts one as a rollback does."""

from __future__ import annotations

from aviary_e2e import admin, canary_rollout, create_experiment, eventually, expect
from webhook_receiver import WebhookReceiver as Receiver


def test_a_killed_server_s_notice_is_delivered_by_another(aviary_factory) -> None:
    deciding, other = aviary_factory(), aviary_factory()
    receiver = Receiver(failures=2)
    try:
        key = "killed-mid-retry"
        create_experiment(deciding, canary_rollout(key, {"variant": "canary", "steps": [25, 100], "step_seconds": 3600, "notify_url": receiver.url}))
        expect(admin(deciding).post(f"/v1/experiments/{key}/rollback", json={"reason": "error spike"}), 200)
        # The first attempt is refused; the server that decided the rollback dies before the next.
        eventually(lambda: receiver.attempts >= 1, timeout=5, what="a first attempt")
        deciding.process.kill()
        deciding.process.wait(timeout=10)
        eventually(lambda: receiver.received, timeout=25, what="the notice, from the other server")
        assert receiver.received[0]["experiment"] == key and receiver.received[0]["reason"] == "error spike"
        assert len(receiver.received) == 1, receiver.received
        ids = {headers["x-aviary-delivery"] for headers, _ in receiver.deliveries}
        assert len(ids) == 1, ids  # one notice, the same id on every attempt, whoever made it
        notices = expect(admin(other).get(f"/v1/experiments/{key}/notices"), 200).json()["notices"]
        eventually(lambda: expect(admin(other).get(f"/v1/experiments/{key}/notices"), 200).json()["notices"][0]["state"] == "delivered",
                   timeout=5, what="the notice shown delivered")
        notices = expect(admin(other).get(f"/v1/experiments/{key}/notices"), 200).json()["notices"]
        assert [(n["event"], n["delivery"], n["state"]) for n in notices] == [("rolled_back", ids.pop(), "delivered")], notices
        assert notices[0]["attempts"] >= 3 and notices[0]["delivered_at"], notices
    finally:
        receiver.close()


def test_a_pause_posts_its_notice_and_the_list_shows_failures(aviary_factory) -> None:
    server = aviary_factory()
    receiver = Receiver(failures=100)
    try:
        key = "paused-by-hand"
        create_experiment(server, canary_rollout(key, {"variant": "canary", "steps": [25, 100], "step_seconds": 3600, "notify_url": receiver.url}))
        expect(admin(server).post(f"/v1/experiments/{key}/pause", json={"reason": "looking into it"}), 200)
        eventually(lambda: receiver.attempts >= 2, timeout=10, what="two attempts")
        notices = expect(admin(server).get(f"/v1/experiments/{key}/notices"), 200).json()["notices"]
        assert notices[0]["event"] == "paused" and notices[0]["state"] == "pending" and notices[0]["last_error"] == "answered 500", notices
        assert notices[0]["body"]["reason"] == "looking into it"
        expect(admin(server).get("/v1/experiments/nobody/notices"), 404)
    finally:
        receiver.close()
