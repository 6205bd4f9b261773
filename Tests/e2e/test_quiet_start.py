"""A quiet start: a fresh `aviary migrate` and `aviary serve` at the default log level print no
warning on a healthy system (docs/operations.md, "Logs").

Every warning is worth reading only if none is noise: this fails on any line at `warning` or
above, so a new one must either be a real problem or not be a warning.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import requests

from aviary_e2e import Server
from conftest import REPO_ROOT, maintenance_url, psql, with_database

LOUD = (" warning ", " error ", " critical ")


def loud_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(level in line for level in LOUD)]


def test_a_fresh_migrate_and_serve_print_no_warning(aviary_executable: str, aviary_factory):
    name = f"aviary_e2e_quiet_{secrets.token_hex(4)}"
    maintenance = maintenance_url()
    psql(maintenance, f'CREATE DATABASE "{name}"')
    try:
        env = {k: v for k, v in os.environ.items() if k != "AVIARY_LOG_LEVEL"}
        env["AVIARY_DATABASE_URL"] = with_database(maintenance, name)
        for run in ("first", "again"):
            result = subprocess.run([aviary_executable, "migrate", "--directory", str(REPO_ROOT / "migrations")],
                                    env=env, capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            output = result.stdout + result.stderr
            assert not loud_lines(output), f"{run} migrate:\n{output}"
            assert "info" in output or "up to date" in output, output  # it did log at the default level
    finally:
        psql(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    server: Server = aviary_factory(AVIARY_LOG_LEVEL="info")
    assert requests.get(server.url + "/readyz", timeout=10).status_code == 200
    log = open(server.log_path, encoding="utf-8", errors="replace").read()
    assert "Server started" in log, log
    assert not loud_lines(log), log
