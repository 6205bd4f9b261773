"""Fixtures for the end-to-end suite: real `aviary` processes on a real PostgreSQL.

Environment:
  AVIARY_TEST_DATABASE_URL  postgres:// URL of a maintenance database whose role may
                            CREATE DATABASE (scripts/test exports it). Required.
  AVIARY_BIN                the `aviary` executable (default <repo>/.build/debug/aviary).

Every test module gets its own database `aviary_e2e_<hex>` (created, migrated with
`aviary migrate --directory <repo>/migrations`, dropped WITH (FORCE) at the end) and its
own servers. `aviary_factory()` starts one more `aviary serve` on that database, so a module
can run two replicas side by side. All servers of one database share one admin token
(AVIARY_ADMIN_TOKEN defines the bootstrap admin key; two different tokens would replace
each other's key).

Run: scripts/test (does everything), or by hand with its virtualenv
  AVIARY_TEST_DATABASE_URL=postgres://… .aviary/test-venv/bin/python -m pytest -q -p no:cacheprovider Tests/e2e
"""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aviary_e2e import ANSWERS, Api, Server, admin, create_client_key  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 30.0  # seconds for `GET /readyz` to answer 200
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL


# ---------------------------------------------------------------------------
# Plumbing
# ---------------------------------------------------------------------------


def aviary_bin() -> str:
    path = os.environ.get("AVIARY_BIN") or str(REPO_ROOT / ".build" / "debug" / "aviary")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"aviary executable not found at {path}: run `swift build` first "
            "(or set AVIARY_BIN); scripts/test does both",
            pytrace=False,
        )
    return path


def maintenance_url() -> str:
    url = os.environ.get("AVIARY_TEST_DATABASE_URL", "")
    if not url:
        pytest.fail(
            "AVIARY_TEST_DATABASE_URL is not set: run the suite through scripts/test, or export "
            "a postgres:// URL of a database whose role may CREATE DATABASE",
            pytrace=False,
        )
    return url


def psql_bin() -> str:
    found = shutil.which("psql")
    if found:
        return found
    # Debian keeps versioned binaries out of PATH when postgresql-client-common is absent.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))
    if candidates:
        return candidates[-1]
    pytest.fail("psql not found (install postgresql-client)", pytrace=False)
    raise AssertionError  # unreachable


def psql(url: str, sql: str) -> str:
    """Run one SQL statement; returns its rows unaligned, one a line. The password goes through
    PGPASSWORD, not argv (`ps` shows argv)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    if parts.password is not None:
        env["PGPASSWORD"] = unquote(parts.password)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = (parts.username or "") + "@" + host + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    result = subprocess.run(
        [psql_bin(), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"psql failed ({sql}): {result.stderr.strip()}")
    return result.stdout.strip()


def with_database(url: str, name: str) -> str:
    """The same server and credentials, another database name."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM, wait, then SIGKILL — only this process, which the suite started."""
    if process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def answers_match_the_contract():
    """After the whole suite: every answer the suite's `Api` calls got has a status its
    operation declares in openapi.json (docs/api.md, "OpenAPI"), so a route cannot answer with
    a status its contract does not list."""
    yield
    document = json.loads((Path(__file__).resolve().parents[2] / "Sources/AviaryServer/OpenAPI/openapi.json").read_text())
    undeclared = ANSWERS.undeclared(document)
    assert not undeclared, "answers openapi.json does not declare:\n" + "\n".join(undeclared)


@pytest.fixture(scope="session")
def aviary_executable() -> str:
    return aviary_bin()


@pytest.fixture(scope="module")
def database_url(aviary_executable: str):
    """A fresh, migrated database for this module; dropped afterwards."""
    maintenance = maintenance_url()
    name = f"aviary_e2e_{secrets.token_hex(6)}"
    psql(maintenance, f'CREATE DATABASE "{name}"')
    url = with_database(maintenance, name)
    try:
        env = dict(os.environ, AVIARY_DATABASE_URL=url, AVIARY_LOG_LEVEL="warning")
        result = subprocess.run(
            [aviary_executable, "migrate", "--directory", str(REPO_ROOT / "migrations")],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"aviary migrate failed:\n{result.stdout}\n{result.stderr}"
        yield url
    finally:
        try:
            psql(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception as e:  # never hide the test's own failure behind cleanup
            print(f"warning: could not drop {name}: {e}", file=sys.stderr)


@pytest.fixture(scope="module")
def admin_token() -> str:
    """One bootstrap admin secret per database (≥ 16 characters)."""
    return "e2e-admin-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def aviary_factory(aviary_executable: str, database_url: str, admin_token: str, tmp_path_factory):
    """`start(**extra_env) -> Server`: start one more `aviary serve` on this module's database.

    Waits until `GET /readyz` answers 200 (30 s); every server is stopped at module end.
    """
    started: list[Server] = []
    logs = tmp_path_factory.mktemp("aviary-logs")

    def start(**extra_env: str) -> Server:
        last_error = ""
        for attempt in range(3):  # a free port can be taken between probe and bind: retry
            port = free_port()
            log_path = logs / f"aviary-{len(started)}-{port}.log"
            env = dict(os.environ)
            env.update(
                AVIARY_DATABASE_URL=database_url,
                AVIARY_HOST="127.0.0.1",
                AVIARY_PORT=str(port),
                AVIARY_ADMIN_TOKEN=admin_token,
                AVIARY_LOG_LEVEL="warning",
            )
            env.update(extra_env)
            log = open(log_path, "wb")
            process = subprocess.Popen(
                [aviary_executable, "serve"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(REPO_ROOT),
            )
            log.close()
            server = Server(
                url=f"http://127.0.0.1:{port}",
                admin_token=admin_token,
                database_url=database_url,
                process=process,
                log_path=str(log_path),
            )
            deadline = time.monotonic() + READY_TIMEOUT
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    break
                try:
                    if requests.get(server.url + "/readyz", timeout=2).status_code == 200:
                        started.append(server)
                        return server
                except requests.RequestException:
                    pass
                time.sleep(0.1)
            exited = process.poll() is not None
            stop_process(process)
            last_error = (
                f"aviary serve on port {port} "
                + (f"exited with {process.returncode}" if exited else f"not ready after {READY_TIMEOUT:.0f} s")
                + f"; log:\n{server.log_tail()}"
            )
            if not exited:
                break  # a slow start is not a port race: do not wait 30 s more
        pytest.fail(last_error, pytrace=False)
        raise AssertionError  # unreachable

    yield start

    for server in started:
        stop_process(server.process)


@pytest.fixture(scope="module")
def aviary(aviary_factory) -> Server:
    """One running server for this module."""
    return aviary_factory()


@pytest.fixture(scope="module")
def client_key(aviary: Server) -> str:
    """A client (publishable) key created through `POST /v1/keys`."""
    return create_client_key(aviary)


@pytest.fixture(scope="module")
def admin_api():
    """`admin_api(server) -> Api` authenticated with the admin token."""
    return admin


@pytest.fixture(scope="module")
def client_api(client_key: str):
    """`client_api(server) -> Api` authenticated with the module's client key."""

    def make(server: Server, *, header: str = "bearer") -> Api:
        return Api(server, client_key, header=header)

    return make
