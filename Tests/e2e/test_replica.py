"""Reports from a read replica (docs/operations.md, "A read replica"), against the real streaming
replica scripts/test starts (pg_basebackup -R): while its replay lag is under
AVIARY_REPLICA_MAX_LAG reports read it and say so; past it they read the primary; with the
replica stopped they still answer from the primary, and /readyz does not mind.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit, urlunsplit

import pytest

from aviary_e2e import Api, Server, admin, create_experiment, expect, poll_until
from conftest import psql

KEY = "replicated"


def replica_env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: run the suite through scripts/test, which starts the replica")
    return value


@pytest.fixture(scope="module")
def replica_url(database_url: str) -> str:
    parts = urlsplit(database_url)
    url = urlunsplit(parts._replace(netloc=f"{parts.netloc.rsplit(':', 1)[0]}:{replica_env('AVIARY_TEST_REPLICA_PORT')}"))
    # The module's database and its migrations reach the replica by replay.
    poll_until(lambda: try_psql(url, "SELECT count(*) FROM aviary_migrations") not in (None, "0"), timeout=30, interval=0.2)
    return url


def try_psql(url: str, sql: str) -> str | None:
    try:
        return psql(url, sql)
    except Exception:  # noqa: BLE001 - not there yet
        return None


def pg_ctl(*args: str) -> None:
    """pg_ctl on the replica, as the cluster's owner (PostgreSQL refuses to run as root)."""
    command = [replica_env("AVIARY_TEST_PG_CTL"), "-D", replica_env("AVIARY_TEST_REPLICA_DATA"), *args]
    if os.geteuid() == 0:
        command = ["runuser", "-u", replica_env("AVIARY_TEST_PG_OS_USER"), "--", *command]
    subprocess.run(command, check=True, cwd="/", stdout=subprocess.DEVNULL)


def send(client: Api, units: list[str], count: int) -> None:
    ts = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    batch = [{"id": str(uuid.uuid4()), "type": "message", "user_id": u, "ts": ts} for u in units for _ in range(count)]
    expect(client.post("/v1/events", json=batch), 200)


def report(server: Server) -> tuple[dict, str]:
    r = expect(admin(server).get(f"/v1/experiments/{KEY}/report"), 200)
    return r.json(), r.headers["Aviary-Report-Source"]


def scrape(server: Server) -> str:
    return expect(Api(server, None).get("/metrics"), 200).text


def test_reports_read_the_replica_while_it_keeps_up_and_the_primary_past_the_lag(aviary_factory, replica_url: str, client_key: str) -> None:
    patient = aviary_factory(AVIARY_DATABASE_REPLICA_URL=replica_url, AVIARY_REPLICA_MAX_LAG="3600")
    api = admin(patient)
    expect(api.put("/v1/metrics/replica_messages", json={"kind": "count", "event": "message"}), 201, 200)
    create_experiment(patient, {
        "key": KEY, "variants": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "control": "a",
        "rules": [{"serve": {"split": [{"variant": "a", "weight": 50}, {"variant": "b", "weight": 50}]}}],
        "metrics": {"primary": ["replica_messages"]}})
    client = Api(patient, client_key)
    units = [f"r-{i}" for i in range(40)]
    for u in units:
        expect(client.get(f"/v1/assign/{KEY}", headers={"X-Aviary-User": u}), 200)
    send(client, units, 2)
    # Replayed: the replica's report has every event.
    poll_until(lambda: report(patient)[0]["groups"][0]["events"] + report(patient)[0]["groups"][1]["events"] == 80, timeout=10)
    first, header = report(patient)
    assert first["source"] == "replica" and header == "replica", first["source"]
    assert first["replica_lag_seconds"] is not None and first["replica_lag_seconds"] < 3600

    psql(replica_url, "SELECT pg_wal_replay_pause()")
    try:
        send(client, units, 1)
        time.sleep(1.5)  # the replica's last replayed commit is now over a second old
        stale, _ = report(patient)
        assert stale["source"] == "replica" and stale["replica_lag_seconds"] > 1, (stale["source"], stale["replica_lag_seconds"])
        assert sum(g["events"] for g in stale["groups"]) == 80  # it lacks the newest events
        metrics = scrape(patient)
        assert "aviary_replica_up 1" in metrics and "aviary_replica_lag_seconds" in metrics

        strict = aviary_factory(AVIARY_DATABASE_REPLICA_URL=replica_url, AVIARY_REPLICA_MAX_LAG="1")
        fresh, header = report(strict)
        assert fresh["source"] == "primary" and header == "primary" and fresh["replica_lag_seconds"] > 1, fresh["source"]
        assert sum(g["events"] for g in fresh["groups"]) == 120  # the primary has them
        csv = expect(admin(strict).get(f"/v1/experiments/{KEY}/report.csv"), 200)
        assert csv.headers["Aviary-Report-Source"] == "primary"
    finally:
        psql(replica_url, "SELECT pg_wal_replay_resume()")
    poll_until(lambda: sum(g["events"] for g in report(patient)[0]["groups"]) == 120, timeout=10)
    assert report(patient)[0]["source"] == "replica"


def test_with_the_replica_stopped_reports_come_from_the_primary(aviary_factory, replica_url: str) -> None:
    server = aviary_factory(AVIARY_DATABASE_REPLICA_URL=replica_url)
    assert report(server)[0]["source"] == "replica"
    pg_ctl("-m", "fast", "-w", "-s", "stop")
    try:
        answer, header = report(server)
        assert answer["source"] == "primary" and header == "primary" and answer["replica_lag_seconds"] is None
        assert sum(g["events"] for g in answer["groups"]) == 120
        expect(Api(server, None).get("/readyz"), 200)
        assert "aviary_replica_up 0" in scrape(server)
    finally:
        pg_ctl("-l", replica_env("AVIARY_TEST_REPLICA_LOG"), "-w", "-s", "start")
    poll_until(lambda: report(server)[0]["source"] == "replica", timeout=20, interval=0.5)
