"""nginx routes a canary with `auth_request` to Aviary.

A real nginx (scripts/test installs it) in front of two tiny upstreams that answer "stable"
and "canary". `auth_request` asks `GET /v1/assign/chat-release?body=none`, and
`auth_request_set` copies the `X-Aviary-Variant-chat-release` answer header
(`$upstream_http_x_aviary_variant_chat_release`) into a variable that picks the upstream.

Two configurations run: a minimal one written here, and the one in docs/integrations.md,
taken from the document with only its addresses and key replaced, so the documented config
is known to work.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from aviary_e2e import CHAT_RELEASE, EVERYONE_SPLIT, Server, admin, create_experiment, expect, parallel, put_cohort, split_variant

REPO_ROOT = Path(__file__).resolve().parents[2]

# Every path stays inside {tmp}. No `user` directive: as root, workers run as `nobody`; they
# never write here, since responses are never buffered to disk (proxy_max_temp_file_size 0).
MAIN_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{ worker_connections 64; }}

http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_max_temp_file_size 0;

{http}
}}
"""

MINIMAL_HTTP = """\
    # $variant is set by auth_request_set below; map is evaluated when $backend is used.
    map $variant $backend {{
        canary  127.0.0.1:{canary_port};
        default 127.0.0.1:{stable_port};
    }}

    server {{
        listen 127.0.0.1:{port};

        location / {{
            auth_request /_aviary;
            auth_request_set $variant $upstream_http_x_aviary_variant_chat_release;
            proxy_pass http://$backend;
        }}

        location = /_aviary {{
            internal;
            proxy_pass http://127.0.0.1:{aviary_port}/v1/assign/chat-release?body=none;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header Authorization "";
            proxy_set_header X-API-Key {client_key};
            proxy_set_header X-Aviary-User $http_x_user;
            proxy_set_header Cookie $http_cookie;
        }}
    }}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if not found:
        pytest.fail("nginx is not installed: scripts/test installs it (apt-get install nginx)", pytrace=False)
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upstream(answer: str) -> ThreadingHTTPServer:
    """Answers `answer`, and echoes the X-Aviary-Assignments request header it got."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = answer.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Seen-Assignments", self.headers.get("X-Aviary-Assignments", ""))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def run_nginx(http_block: str, tmp: Path):
    """Start an nginx master with `http_block`, yield (url, tmp); stop only that process."""
    binary = nginx_binary()
    port_match = re.search(r"listen 127\.0\.0\.1:(\d+);", http_block)
    assert port_match, http_block
    port = int(port_match.group(1))
    conf = tmp / "nginx.conf"
    conf.write_text(MAIN_CONF.format(tmp=tmp, http=http_block))
    base = [binary, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    check = subprocess.run(base + ["-t"], capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"nginx -t failed:\n{check.stderr}\n{conf.read_text()}"

    process = subprocess.Popen(base, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}: {process.stderr.read().decode()}"
                            f"\n{(tmp / 'error.log').read_text(errors='replace')}", pytrace=False)
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not listen within 15 s", pytrace=False)
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", tmp
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: the master stops its workers
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)


def documented_http_block(*, aviary: str, stable: str, canary: str, port: int, client_key: str) -> str:
    """The ```nginx block of docs/integrations.md with test addresses and key put in."""
    doc = (REPO_ROOT / "docs" / "integrations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```nginx\n(.*?)```", doc, re.S)
    assert len(blocks) == 1, "docs/integrations.md should have exactly one ```nginx block"
    text = blocks[0]
    replacements = [
        (r"upstream aviary \{.*?\n\}", f"upstream aviary {{\n    server {aviary};\n    keepalive 16;\n}}"),
        (r"upstream chat_stable \{[^}]*\}", f"upstream chat_stable {{ server {stable}; }}"),
        (r"upstream chat_canary \{[^}]*\}", f"upstream chat_canary {{ server {canary}; }}"),
        (r"listen 80;", f"listen 127.0.0.1:{port};"),
        (r"avk_…client key…", client_key),
    ]
    for pattern, value in replacements:
        text, n = re.subn(pattern, lambda _m, v=value: v, text, count=1, flags=re.S)
        assert n == 1, f"docs/integrations.md nginx block no longer has {pattern!r}; update this test"
    return text


@pytest.fixture(scope="module")
def upstreams():
    stable, canary = upstream("stable"), upstream("canary")
    yield stable.server_address[1], canary.server_address[1]
    for s in (stable, canary):
        s.shutdown()
        s.server_close()


@pytest.fixture(scope="module")
def configured(aviary: Server) -> Server:
    put_cohort(aviary, "internal", {"attr": "cookie.internal", "eq": "1"})
    create_experiment(aviary, copy.deepcopy(CHAT_RELEASE))
    return aviary


@pytest.fixture(scope="module")
def nginx(configured: Server, client_key: str, upstreams, tmp_path_factory):
    stable_port, canary_port = upstreams
    block = MINIMAL_HTTP.format(
        port=free_port(), stable_port=stable_port, canary_port=canary_port,
        aviary_port=configured.url.rsplit(":", 1)[1], client_key=client_key,
    )
    with run_nginx(block, tmp_path_factory.mktemp("nginx")) as running:
        yield running


def documented_nginx(configured: Server, client_key: str, upstreams, tmp: Path, *, aviary: str | None = None):
    stable_port, canary_port = upstreams
    block = documented_http_block(
        aviary=aviary or configured.url.removeprefix("http://"),
        stable=f"127.0.0.1:{stable_port}", canary=f"127.0.0.1:{canary_port}",
        port=free_port(), client_key=client_key,
    )
    return run_nginx(block, tmp)


def get(nginx, **headers: str) -> requests.Response:
    url, tmp = nginx
    r = requests.get(url + "/chat", headers=headers, timeout=10)
    assert r.status_code == 200, (
        f"nginx answered {r.status_code}: {r.text[:500]}\n"
        f"{(tmp / 'error.log').read_text(errors='replace')[-2000:]}")
    return r


def assigned_variant(server: Server, key: str, user: str) -> str:
    r = expect(requests.get(server.url + "/v1/assign/chat-release",
                            headers={"X-API-Key": key, "X-Aviary-User": user}, timeout=10), 200)
    return r.json()["assignments"]["chat-release"]["variant"]


def stable_user(server: Server, key: str) -> str:
    user = next(u for u in (f"nginx-{i}" for i in range(200)) if assigned_variant(server, key, u) == "stable")
    assert split_variant("chat-release", user, EVERYONE_SPLIT) == "stable"
    return user


def canary_user(server: Server, key: str) -> str:
    user = next(u for u in (f"nginx-{i}" for i in range(2000))
                if split_variant("chat-release", u, EVERYONE_SPLIT) == "canary")
    assert assigned_variant(server, key, user) == "canary"
    return user


# ---------------------------------------------------------------------------
# The minimal configuration
# ---------------------------------------------------------------------------


def test_internal_cookie_goes_to_canary(nginx):
    assert get(nginx, **{"X-User": "staff-7", "Cookie": "internal=1"}).text == "canary"
    assert get(nginx, **{"X-User": "staff-8", "Cookie": "theme=dark; internal=1"}).text == "canary"


def test_stable_user_goes_to_stable(nginx, configured: Server, client_key: str):
    user = stable_user(configured, client_key)
    assert get(nginx, **{"X-User": user}).text == "stable"
    assert get(nginx, **{"X-User": user, "Cookie": "internal=0"}).text == "stable"


def test_split_canary_user_goes_to_canary(nginx, configured: Server, client_key: str):
    assert get(nginx, **{"X-User": canary_user(configured, client_key)}).text == "canary"


def test_client_bearer_token_does_not_reach_aviary(nginx):
    # The app's own Authorization header must not replace the client key in the subrequest.
    r = get(nginx, **{"X-User": "staff-9", "Cookie": "internal=1", "Authorization": "Bearer app-session-jwt"})
    assert r.text == "canary"


# ---------------------------------------------------------------------------
# The configuration of docs/integrations.md
# ---------------------------------------------------------------------------


def test_documented_config_routes_and_passes_cookie(configured: Server, client_key: str, upstreams, tmp_path):
    with documented_nginx(configured, client_key, upstreams, tmp_path) as running:
        staff = get(running, **{"X-User-Id": "staff-1", "Cookie": "internal=1"})
        assert staff.text == "canary"
        assert "chat-release=canary" in staff.headers["X-Seen-Assignments"], dict(staff.headers)
        # First visit without aviary_id: Aviary's cookie reaches the browser through nginx.
        assert staff.headers.get("Set-Cookie", "").startswith("aviary_id="), dict(staff.headers)

        user = stable_user(configured, client_key)
        again = get(running, **{"X-User-Id": user, "Cookie": "aviary_id=fixed-anon-1"})
        assert again.text == "stable"
        assert "Set-Cookie" not in again.headers, dict(again.headers)

        assert get(running, **{"X-User-Id": canary_user(configured, client_key)}).text == "canary"


def test_documented_config_fails_open_to_stable(configured: Server, client_key: str, upstreams, tmp_path):
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    with documented_nginx(configured, client_key, upstreams, tmp_path, aviary=dead) as running:
        assert get(running, **{"X-User-Id": "staff-1", "Cookie": "internal=1"}).text == "stable"


# ---------------------------------------------------------------------------
# With 300 running experiments (docs/api.md, "Header budget"); last, since it adds them
# ---------------------------------------------------------------------------


def test_both_configs_route_every_user_with_300_experiments(nginx, configured: Server, client_key: str, upstreams, tmp_path):
    def create(api, key: str) -> None:
        expect(api.post("/v1/experiments", json={
            "key": key, "unit": "user_id",
            "variants": [{"key": "off", "value": False}, {"key": "on", "value": True}], "control": "off",
            "rules": [{"name": "everyone", "serve": {"split": [{"variant": "off", "weight": 50}, {"variant": "on", "weight": 50}]}}],
        }), 201)
        expect(api.post(f"/v1/experiments/{key}/start"), 200)

    parallel(admin(configured), create, [f"many-{i:03d}" for i in range(299)])
    everything = expect(requests.get(configured.url + "/v1/assign", headers={"X-API-Key": client_key, "X-Aviary-User": "u"}, timeout=10), 200)
    assert len(everything.json()["assignments"]) == 300
    assert int(everything.headers["X-Aviary-Truncated"]) > 0

    stable, canary = stable_user(configured, client_key), canary_user(configured, client_key)
    assert get(nginx, **{"X-User": "staff-7", "Cookie": "internal=1"}).text == "canary"
    assert get(nginx, **{"X-User": stable}).text == "stable"
    assert get(nginx, **{"X-User": canary}).text == "canary"
    with documented_nginx(configured, client_key, upstreams, tmp_path) as running:
        staff = get(running, **{"X-User-Id": "staff-1", "Cookie": "internal=1"})
        assert staff.text == "canary" and "chat-release=canary" in staff.headers["X-Seen-Assignments"]
        assert get(running, **{"X-User-Id": stable, "Cookie": "aviary_id=fixed-anon-2"}).text == "stable"
        assert get(running, **{"X-User-Id": canary}).text == "canary"
