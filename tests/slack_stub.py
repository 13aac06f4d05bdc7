"""A local stand-in of the Slack Web API and of response_url, on 127.0.0.1.

Records every call (method, parsed body) and answers like Slack does for the
few methods the app uses. ``fail`` makes a method answer ``{"ok": false}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

USERS_TZ = {"U1": "Europe/Berlin", "U2": "America/New_York"}


@dataclass
class Call:
    path: str
    body: dict[str, Any]

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class SlackStandIn:
    base: str = ""
    calls: list[Call] = field(default_factory=list)
    fail: dict[str, str] = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base}/respond/{name}"

    def record(self, call: Call) -> None:
        with self.cond:
            self.calls.append(call)
            self.cond.notify_all()

    def wait_for(self, method: str, *, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """The calls to ``method`` (an API method or ``respond``) once there are ``count``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [
                    c
                    for c in self.calls
                    if c.method == method
                    or (method == "respond" and c.path.startswith("/respond/"))
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {count}x {method} within {timeout}s; calls: "
                        f"{[c.path for c in self.calls]}"
                    )
                self.cond.wait(left)

    def methods(self) -> list[str]:
        with self.cond:
            return [c.path for c in self.calls]


def _handler(stand_in: SlackStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            self._answer(path, {k: v[0] for k, v in parse_qs(query).items()})

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            if (self.headers.get("Content-Type") or "").startswith("application/json"):
                body = json.loads(raw) if raw else {}
            else:
                body = {k: v[0] for k, v in parse_qs(raw).items()}
                if isinstance(body.get("blocks"), str):
                    body["blocks"] = json.loads(body["blocks"])
            self._answer(self.path.partition("?")[0], body)

        def _answer(self, path: str, body: dict[str, Any]) -> None:
            self.path = path
            stand_in.record(Call(path=self.path, body=body))
            if self.path.startswith("/respond/"):
                self._send(200, b"ok", "text/plain")
                return
            method = self.path.rsplit("/", 1)[-1]
            if method in stand_in.fail:
                reply: dict[str, Any] = {"ok": False, "error": stand_in.fail[method]}
            elif method == "auth.test":
                reply = {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"}
            elif method == "users.info":
                user = body.get("user", "")
                reply = {"ok": True, "user": {"id": user, "tz": USERS_TZ.get(user)}}
            elif method in ("chat.postMessage", "chat.update"):
                reply = {"ok": True, "channel": body.get("channel"), "ts": "1700000000.000200"}
            else:
                reply = {"ok": True}
            self._send(200, json.dumps(reply).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def running_slack_stand_in() -> Iterator[SlackStandIn]:
    stand_in = SlackStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stand_in))
    server.daemon_threads = True
    stand_in.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends: v0 HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}
