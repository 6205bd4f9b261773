"""With PostgreSQL unreachable, assignment keeps answering from the last snapshot (docs/operations.md, "When PostgreSQL is down")."""

from __future__ import annotations

import signal
from urllib.parse import urlsplit

from aviary_e2e import CHAT_RELEASE, admin, create_experiment, expect, poll_until, put_cohort
from conftest import maintenance_url, psql


def test_assignment_survives_the_database_going_away(aviary, client_api, database_url):
    put_cohort(aviary, "internal", {"attr": "cookie.internal", "eq": "1"})
    create_experiment(aviary, CHAT_RELEASE)
    api = client_api(aviary)
    staff = {"X-Aviary-User": "u-7", "Cookie": "internal=1; aviary_id=anon-7"}

    before = expect(api.get("/v1/assign", headers=staff), 200).json()
    assert before["assignments"]["chat-release"]["variant"] == "canary"

    name = urlsplit(database_url).path.lstrip("/")
    maintenance = maintenance_url()
    # Refuse new connections and cut the server's existing ones: the database is "down".
    psql(maintenance, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    try:
        psql(maintenance, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        poll_until(lambda: api.get("/readyz").status_code == 503, timeout=10)
        for _ in range(20):
            during = expect(api.get("/v1/assign", headers=staff), 200).json()
            assert during["assignments"] == before["assignments"]
        # Writes cannot be acknowledged without the database: a clear 503, never a false 2xx.
        write = admin(aviary).post("/v1/experiments/chat-release/pause")
        assert write.status_code == 503, write.text
        assert write.json()["error"]["code"] == "database_unavailable"
    finally:
        psql(maintenance, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')

    poll_until(lambda: api.get("/readyz").status_code == 200, timeout=15)
    expect(admin(aviary).post("/v1/experiments/chat-release/pause"), 200)
    poll_until(lambda: api.get("/v1/assign", headers=staff).json()["assignments"]["chat-release"]["reason"] == "not_running", timeout=2)

    # And it still stops cleanly: every service ends on SIGTERM, none waits on a connection the
    # database cut (the exposures are flushed, nothing is killed).
    aviary.process.send_signal(signal.SIGTERM)
    assert aviary.process.wait(timeout=5) == 0
