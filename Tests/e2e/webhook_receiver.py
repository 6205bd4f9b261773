"""A local HTTP receiver of rollout notices, for the tests of webhooks."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    """A local receiver of rollout notices: `deliveries` holds every POST's headers (lower-case
    names) and exact body, `received` the JSON of those it accepted. It refuses the first
    `failures` with a 500, and with `redirect_to` answers 302 to that address instead."""

    def __init__(self, failures: int = 0, redirect_to: str | None = None) -> None:
        self.deliveries: list[tuple[dict, bytes]] = []
        self.received: list[dict] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.attempts += 1
                receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                elif receiver.attempts <= failures:
                    self.send_response(500)
                else:
                    receiver.received.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/aviary"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
