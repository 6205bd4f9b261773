"""Helpers shared by the end-to-end tests (imported by conftest.py and the test modules).

Only the standard library and `requests`: the suite must run wherever `scripts/test` runs.

- `Api`: a tiny HTTP client bound to one server and one key.
- `murmur3_x86_32` / `bucket` / `split_variant`: the bucketing of docs/api.md, so tests can predict a
  unit's variant exactly instead of only checking proportions.
- `parse_sf_dictionary`: an RFC 8941 (Structured Field Values) dictionary parser for the
  `X-Aviary-Assignments` header.
- `poll_until`: wait for a condition with a deadline (replication checks).
"""

from __future__ import annotations

import http.cookiejar
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import requests

HTTP_TIMEOUT = 10.0  # seconds, for every single HTTP call of the suite


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


@dataclass
class Server:
    """A running `aviary serve` process (see conftest.py)."""

    url: str  # http://127.0.0.1:<port>
    admin_token: str
    database_url: str
    process: Any = field(repr=False, default=None)
    log_path: str = ""

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


class Answers:
    """Every (method, path, status) the suite's `Api` calls were answered with, for the check
    that each status is one its operation declares in openapi.json (conftest's
    `answers_match_the_contract`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: dict[tuple[str, str, int], int] = {}

    def record(self, method: str, path: str, status: int) -> None:
        key = (method.upper(), path.split("?", 1)[0], status)
        with self._lock:
            self.seen[key] = self.seen.get(key, 0) + 1

    def undeclared(self, document: dict) -> list[str]:
        """The answers whose path matches a declared operation whose `responses` lack the status."""
        operations = []
        for template, item in document.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$")
            for method, operation in item.items():
                if isinstance(operation, dict) and "responses" in operation:
                    operations.append((method.upper(), pattern, template, set(operation["responses"])))
        problems = []
        with self._lock:
            seen = dict(self.seen)
        for (method, path, status), count in sorted(seen.items()):
            # The most specific template first: a literal segment beats a capture.
            matches = sorted((t.count("{"), t, declared) for m, p, t, declared in operations if m == method and p.match(path))
            if not matches:
                continue
            _, template, declared = matches[0]
            if str(status) not in declared and f"{str(status)[0]}XX" not in declared and "default" not in declared:
                problems.append(f"{method} {template} answered {status} ({count}×, e.g. {path}); openapi.json lists {sorted(declared)}")
        return problems


ANSWERS = Answers()


class Api:
    """Requests against one server with one key (or none).

    `Api(server, key)` sends `Authorization: Bearer <key>`; `key=None` sends no key.
    Every call has a timeout, so a hung server fails the test instead of hanging CI.
    """

    def __init__(self, server: Server, key: str | None, *, header: str = "bearer"):
        self.server = server
        self.key = key
        self.header = header
        self.session = requests.Session()
        # Never replay cookies a server set: each test sends exactly the cookies it means to.
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        if key is not None:
            if header == "bearer":
                self.session.headers["Authorization"] = f"Bearer {key}"
            else:
                self.session.headers["X-API-Key"] = key

    def clone(self) -> "Api":
        """The same server and key on a new connection pool (one per thread)."""
        return Api(self.server, self.key, header=self.header)

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        kwargs.setdefault("allow_redirects", False)
        response = self.session.request(method, self.server.url + path, **kwargs)
        ANSWERS.record(method, path, response.status_code)
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)


def parallel(api: Api, fn: Callable[[Api, Any], Any], items: Iterable[Any], workers: int = 4) -> list[Any]:
    """`[fn(api, item) for item in items]`, on `workers` threads, each with its own `Api` clone.

    Keeps the many-user tests fast; results come back in the order of `items`.
    """
    local = threading.local()

    def run(item: Any) -> Any:
        if not hasattr(local, "api"):
            local.api = api.clone()
        return fn(local.api, item)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, items))


def admin(server: Server) -> Api:
    """An `Api` that authenticates with the server's bootstrap admin key (AVIARY_ADMIN_TOKEN)."""
    return Api(server, server.admin_token)


def create_client_key(server: Server, name: str = "e2e") -> str:
    """`POST /v1/keys {"role": "client"}` with the admin key; returns the secret (`key`)."""
    r = admin(server).post("/v1/keys", json={"role": "client", "name": name})
    expect(r, 201)
    key = r.json()["key"]
    assert isinstance(key, str) and key, r.text
    return key


def key_everywhere(key: str, *servers: Server, timeout: float = 5) -> None:
    """Wait until every server honours `key`: a key created on one server reaches the others
    within the key refresh interval (docs/api.md), and they answer 401 until then. Asks a route
    with no side effects: a client key gets 403 there once it is known."""
    eventually(lambda: all(Api(s, key).get("/v1/experiments").status_code != 401 for s in servers), timeout=timeout,
               what="the new key on every server")


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    """Assert the status, showing the request and the body when it is wrong."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code}, "
        f"expected {' or '.join(map(str, statuses))}: {response.text[:2000]}"
    )
    return response


def put_cohort(server: Server, key: str, condition: dict) -> None:
    expect(admin(server).put(f"/v1/cohorts/{key}", json={"condition": condition}), 200, 201)


def create_experiment(server: Server, body: dict, *, start: bool = True) -> dict:
    """Create an experiment (201) and, by default, start it; returns the final document."""
    api = admin(server)
    created = expect(api.post("/v1/experiments", json=body), 201).json()
    if not start:
        return created
    return expect(api.post(f"/v1/experiments/{body['key']}/start"), 200).json()


# The fields of an experiment definition a client may send back on PUT (docs/api.md);
# server-owned or live fields (status, revision, rollout_state, timestamps…) are left out.
DEFINITION_FIELDS = (
    "key", "name", "description", "unit", "fallback_unit", "salt", "variants", "control",
    "rules", "opt_out", "layer", "layer_range", "metrics", "rollout", "analysis",
)


def replace_experiment(server: Server, key: str, change: Callable[[dict], None]) -> dict:
    """GET the experiment, apply `change` to its definition, PUT it back with If-Match."""
    api = admin(server)
    current = expect(api.get(f"/v1/experiments/{key}"), 200).json()
    body = {k: current[k] for k in DEFINITION_FIELDS if k in current}
    change(body)
    r = api.put(f"/v1/experiments/{key}", json=body, headers={"If-Match": f'"{current["revision"]}"'})
    return expect(r, 200).json()


def get_experiment(server: Server, key: str) -> dict:
    """`GET /v1/experiments/{key}` with the admin key."""
    return expect(admin(server).get(f"/v1/experiments/{key}"), 200).json()


# ---------------------------------------------------------------------------
# Shared experiment definitions
# ---------------------------------------------------------------------------


def canary_rollout(key: str, rollout: dict) -> dict:
    """An experiment whose catch-all split starts with every unit in `stable`, for `rollout` to
    walk `canary` through (docs/api.md, "Rollouts")."""
    return {
        "key": key,
        "unit": "user_id",
        "variants": [{"key": "stable", "value": "v1"}, {"key": "canary", "value": "v2"}],
        "control": "stable",
        "rules": [{"name": "everyone", "serve": {"split": [{"variant": "stable", "weight": 100}]}}],
        "rollout": rollout,
    }


# The README's `chat-release` with a `cn-east` rule (as docs/integrations.md has it), without
# `metrics` (it would name metric definitions that this suite does not create) and the server-owned `status`/`revision`.
CHAT_RELEASE = {
    "key": "chat-release",
    "name": "LobeChat v1.9.0 canary",
    "description": "Qwen adapter + voice input plugin",
    "unit": "user_id",
    "salt": "chat-release",
    "variants": [
        {"key": "stable", "value": {"version": "v1.8.0"}},
        {"key": "canary", "value": {"version": "v1.9.0"}},
    ],
    "control": "stable",
    "rules": [
        {"name": "staff", "when": {"cohort": "internal"}, "serve": {"variant": "canary"}},
        {"name": "east", "when": {"attr": "region", "in": ["cn-east"]},
         "serve": {"split": [{"variant": "stable", "weight": 75}, {"variant": "canary", "weight": 25}]}},
        {"name": "everyone",
         "serve": {"split": [{"variant": "stable", "weight": 95}, {"variant": "canary", "weight": 5}]}},
    ],
    "opt_out": True,
    "layer": None,
    "layer_range": None,
    "rollout": None,
}
EAST_SPLIT = [("stable", 75), ("canary", 25)]
EVERYONE_SPLIT = [("stable", 95), ("canary", 5)]


# ---------------------------------------------------------------------------
# Bucketing (docs/api.md, "Bucketing"), re-implemented independently
# ---------------------------------------------------------------------------


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit (Austin Appleby's reference), unsigned result."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    mask = 0xFFFFFFFF
    h = seed & mask
    n = len(data)
    rounded = n - (n % 4)
    for i in range(0, rounded, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[rounded:]
    k = 0
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if len(tail) >= 1:
        k ^= tail[0]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def bucket(salt: str, unit: str) -> int:
    """docs/api.md, "Bucketing": (murmur3("<salt>:<unit>") * 10_000) >> 32, in 0 ..< 10_000."""
    return (murmur3_x86_32(f"{salt}:{unit}".encode("utf-8")) * 10_000) >> 32


def split_variant(salt: str, unit: str, split: list[tuple[str, float]]) -> str:
    """The variant a split serves to `unit`: cumulative ranges in list order (docs/api.md, "Bucketing")."""
    b = bucket(salt, unit)
    upper = 0
    for variant, weight in split:
        upper += round(weight * 100)
        if b < upper:
            return variant
    raise AssertionError(f"weights of {split} do not sum to 100")


# ---------------------------------------------------------------------------
# RFC 8941 dictionary (Structured Field Values for HTTP, section 4.2.2)
# ---------------------------------------------------------------------------


class SFParseError(ValueError):
    pass


_LCALPHA = "abcdefghijklmnopqrstuvwxyz"
_DIGIT = "0123456789"
_TCHAR = "!#$%&'*+-.^_`|~" + _DIGIT + _LCALPHA + _LCALPHA.upper()


class _SFParser:
    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.i += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.i += 1

    def key(self) -> str:
        c = self.peek()
        if not c or (c not in _LCALPHA and c != "*"):
            raise SFParseError(f"key must start with lcalpha or '*' at {self.i}: {self.s!r}")
        start = self.i
        while self.peek() and self.peek() in _LCALPHA + _DIGIT + "_-.*":
            self.i += 1
        return self.s[start:self.i]

    def bare_item(self) -> Any:
        c = self.peek()
        if c == "-" or (c and c in _DIGIT):
            return self.number()
        if c == '"':
            return self.string()
        if c == "?":
            self.i += 1
            b = self.peek()
            if b not in ("0", "1") or not b:
                raise SFParseError(f"bad boolean at {self.i}")
            self.i += 1
            return b == "1"
        if c and (c.isascii() and c.isalpha() or c == "*"):
            start = self.i
            while self.peek() and self.peek() in _TCHAR + ":/":
                self.i += 1
            return self.s[start:self.i]  # a token
        raise SFParseError(f"unexpected {c!r} at {self.i} in {self.s!r}")

    def number(self) -> int | float:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        while self.peek() and self.peek() in _DIGIT + ".":
            self.i += 1
        text = self.s[start:self.i]
        try:
            return float(text) if "." in text else int(text)
        except ValueError as e:
            raise SFParseError(f"bad number {text!r}") from e

    def string(self) -> str:
        self.i += 1  # opening quote
        out = []
        while True:
            c = self.peek()
            if not c:
                raise SFParseError("unterminated string")
            self.i += 1
            if c == "\\":
                n = self.peek()
                if n not in ('"', "\\") or not n:
                    raise SFParseError("bad escape")
                out.append(n)
                self.i += 1
            elif c == '"':
                return "".join(out)
            else:
                out.append(c)

    def parameters(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        while self.peek() == ";":
            self.i += 1
            self.skip_sp()
            k = self.key()
            v: Any = True
            if self.peek() == "=":
                self.i += 1
                v = self.bare_item()
            params[k] = v
        return params

    def dictionary(self) -> dict[str, tuple[Any, dict[str, Any]]]:
        members: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.skip_sp()
        if not self.peek():
            return members
        while True:
            k = self.key()
            if self.peek() == "=":
                self.i += 1
                if self.peek() == "(":
                    raise SFParseError("inner lists are not expected in X-Aviary-Assignments")
                v: Any = self.bare_item()
            else:
                v = True
            members[k] = (v, self.parameters())
            self.skip_ows()
            if not self.peek():
                return members
            if self.peek() != ",":
                raise SFParseError(f"expected ',' at {self.i} in {self.s!r}")
            self.i += 1
            self.skip_ows()
            if not self.peek():
                raise SFParseError("trailing comma")


def parse_sf_dictionary(text: str) -> dict[str, Any]:
    """Parse an RFC 8941 dictionary into {key: bare value} (parameters dropped).

    Raises SFParseError on anything that is not a valid dictionary, e.g. a key that starts
    with a digit or an upper-case letter, or a missing comma.
    """
    parser = _SFParser(text)
    return {k: v for k, (v, _params) in parser.dictionary().items()}


# ---------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------


def poll_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.05) -> tuple[Any, float]:
    """Call `check` every `interval` s until it returns a truthy value or `timeout` s pass.

    Returns (last value, seconds elapsed when it became truthy, or the full wait when not).
    """
    start = time.monotonic()
    while True:
        value = check()
        elapsed = time.monotonic() - start
        if value or elapsed >= timeout:
            return value, elapsed
        time.sleep(interval)


def eventually(check: Callable[[], Any], *, timeout: float, what: str = "") -> float:
    """`poll_until` that fails the test when `check` is still falsy after `timeout` s; returns
    the seconds it took."""
    value, elapsed = poll_until(check, timeout=timeout)
    assert value, f"not within {timeout} s: {what or check}"
    return elapsed


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)
