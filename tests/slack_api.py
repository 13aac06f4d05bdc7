"""A stand-in of the Slack Web API on 127.0.0.1, for ``WebClient(base_url=...)``.

One stand-in for every test that talks to Slack (delivery, the ``/papers`` app,
alerts). Implements ``auth.test``, ``chat.postMessage``, ``chat.postEphemeral``,
``chat.update``, ``users.info``, ``conversations.open``, ``conversations.history``,
``conversations.replies``, incoming webhooks (``/hooks/<name>``) and
``response_url`` (``/respond/<name>``) with Slack's JSON shapes: ``ok: false``
errors with HTTP 200, 429 with ``Retry-After``, and message ``metadata`` returned
only with ``include_all_metadata``. A message posted to a user id (``U...``) goes
to the direct-message conversation ``D...`` with that user, as in Slack.

Every request is kept with its parsed body (``requests``; ``wait_for`` waits for
them); ``calls`` lists the Web API method names in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


@dataclass
class Failure:
    status: int = 200
    error: str = ""
    retry_after: int | None = None
    body: str | None = None
    accepted: bool = False  # the post is made, then the failure answered (a proxy's 504)


USERS_TZ = {"U1": "Europe/Berlin", "U2": "America/New_York"}


@dataclass
class Call:
    path: str
    body: dict[str, Any]

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass
class SlackApi:
    token: str = "xoxb-test-token"
    channel_ids: dict[str, str] = field(default_factory=lambda: {"#papers": "C0PAPERS"})
    channel_errors: dict[str, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    history_error: str = ""
    post_delays: list[float] = field(default_factory=list)  # answer the next posts this late
    refuse_blocks: str = ""  # refuse every post carrying blocks with this error (invalid_blocks)
    refuse_posts: str = ""  # refuse every post with this error (msg_too_long)
    refuse_blocks_with: str = ""  # refuse with invalid_blocks blocks whose JSON holds this

    def __post_init__(self) -> None:
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.requests: list[Call] = []
        self.pages_read: list[tuple[str, int]] = []  # history/replies pages: method, messages
        self._seq = 0
        self.server: ThreadingHTTPServer | None = None

    # -- control ----------------------------------------------------------------------------
    def fail_next(self, method: str, failure: Failure, *, times: int = 1) -> None:
        with self.lock:
            self.failures.setdefault(method, []).extend([failure] * times)

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base}/respond/{name}"

    def _record(self, path: str, body: dict[str, Any]) -> None:
        with self.cond:
            self.requests.append(Call(path=path, body=body))
            self.cond.notify_all()

    def wait_for(self, method: str, *, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """The requests to ``method`` (an API method or ``respond``) once there are ``count``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = [
                    c
                    for c in self.requests
                    if c.method == method
                    or (method == "respond" and c.path.startswith("/respond/"))
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"no {count}x {method} within {timeout}s; requests: "
                        f"{[c.path for c in self.requests]}"
                    )
                self.cond.wait(left)

    def webhook_url(self, name: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{name}"

    def posted(self, channel: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if channel is None or m["channel"] == channel]

    def start(self) -> SlackApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._handle({k: v[0] for k, v in parse_qs(urlparse(self.path).query).items()})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                if (self.headers.get("Content-Type") or "").startswith("application/json"):
                    params = json.loads(raw or "{}")
                else:
                    params = {k: v[0] for k, v in parse_qs(raw).items()}
                query = parse_qs(urlparse(self.path).query)
                params.update({k: v[0] for k, v in query.items()})
                for key in ("blocks", "metadata"):
                    if isinstance(params.get(key), str):
                        params[key] = json.loads(params[key])
                self._handle(params)

            def _handle(self, params: dict[str, Any]) -> None:
                path = urlparse(self.path).path
                api._record(path, params)
                if path.startswith("/respond/"):
                    self._send(200, "ok", {}, content_type="text/plain")
                    return
                if path.startswith("/hooks/"):
                    status, body, headers = api.webhook(path.rsplit("/", 1)[1], params)
                    self._send(status, body, headers, content_type="text/plain")
                    return
                method = path.rsplit("/", 1)[1]
                auth = self.headers.get("Authorization", "")
                token = (
                    auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("token")
                )
                status, payload, headers = api.call(method, params, token=token)
                self._send(status, json.dumps(payload), headers, content_type="application/json")

            def _send(
                self, status: int, body: str, headers: dict[str, str], *, content_type: str
            ) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", f"{content_type}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                # the client may have given up waiting (the time-out test)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # -- behaviour --------------------------------------------------------------------------
    def _failure(self, method: str) -> Failure | None:
        with self.lock:
            self.calls.append(method)
            queue = self.failures.get(method)
            return queue.pop(0) if queue else None

    def _next_ts(self) -> str:
        with self.lock:
            self._seq += 1
            return f"{int(time.time())}.{self._seq:06d}"

    def call(
        self, method: str, params: dict[str, Any], *, token: str | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        failure = self._failure(method)
        if failure is not None and failure.accepted and method == "chat.postMessage":
            channel = str(params.get("channel", ""))
            self._post(self.channel_ids.get(channel, channel), params)
        if failure is not None:
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            return failure.status, {"ok": False, "error": failure.error or "ratelimited"}, headers
        if token != self.token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if method == "users.info":
            user = str(params.get("user", ""))
            return 200, {"ok": True, "user": {"id": user, "tz": USERS_TZ.get(user)}}, {}
        if method == "conversations.open":  # a direct message with one person
            user = str(params.get("users", ""))
            if not user.startswith(("U", "W")):
                return 200, {"ok": False, "error": "user_not_found"}, {}
            return 200, {"ok": True, "channel": {"id": "D" + user[1:]}}, {}
        if method == "auth.test":
            return (
                200,
                {
                    "ok": True,
                    "url": "https://example.slack.com/",
                    "team": "Example",
                    "user": "digestbot",
                    "team_id": "T0TEAM",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                },
                {},
            )
        channel = str(params.get("channel", ""))
        channel_id = self.channel_ids.get(channel, channel)
        if channel_id.startswith(("U", "W")) and method == "chat.postMessage":
            channel_id = "D" + channel_id[1:]  # a user id: the app's DM with that person
        if channel in self.channel_errors or channel_id in self.channel_errors:
            error = self.channel_errors.get(channel) or self.channel_errors[channel_id]
            return 200, {"ok": False, "error": error}, {}
        if not channel_id.startswith(("C", "G", "D")):
            return 200, {"ok": False, "error": "channel_not_found"}, {}
        if method == "chat.postMessage":
            return self._post(channel_id, params)
        if method == "chat.postEphemeral":
            return 200, {"ok": True, "message_ts": self._next_ts()}, {}
        if method == "chat.update":
            if len(params.get("blocks") or []) > 50:
                return 200, {"ok": False, "error": "invalid_blocks"}, {}
            return 200, {"ok": True, "channel": channel_id, "ts": params.get("ts")}, {}
        if method in ("conversations.history", "conversations.replies"):
            if channel.startswith("#"):  # Slack reads a conversation by id only
                return 200, {"ok": False, "error": "channel_not_found"}, {}
            if self.history_error:
                return 200, {"ok": False, "error": self.history_error}, {}
            return self._read(method, channel_id, params)
        return 200, {"ok": False, "error": "unknown_method"}, {}

    def _post(
        self, channel_id: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        text, blocks = params.get("text"), params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if not text and not blocks:
            return 200, {"ok": False, "error": "no_text"}, {}
        if blocks is not None and len(blocks) > 50:
            return 200, {"ok": False, "error": "invalid_blocks"}, {}
        if self.refuse_posts or (blocks and self.refuse_blocks):
            return 200, {"ok": False, "error": self.refuse_posts or self.refuse_blocks}, {}
        if blocks and self.refuse_blocks_with and self.refuse_blocks_with in json.dumps(blocks):
            return 200, {"ok": False, "error": "invalid_blocks"}, {}
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        ts = self._next_ts()
        message = {
            "type": "message",
            "user": "U0BOT",
            "bot_id": "B0BOT",
            "text": text or "",
            "blocks": blocks or [],
            "ts": ts,
            "channel": channel_id,
            "received": time.monotonic(),
        }
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        if metadata:
            message["metadata"] = metadata
        with self.lock:
            self.messages.append(message)
            delay = self.post_delays.pop(0) if self.post_delays else 0.0
        time.sleep(delay)  # accepted, but the answer comes after the client gave up
        public = {k: v for k, v in message.items() if k not in ("channel", "received")}
        return 200, {"ok": True, "channel": channel_id, "ts": ts, "message": public}, {}

    def _read(
        self, method: str, channel_id: str, params: dict[str, Any]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with_meta = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
        limit = int(params.get("limit") or 100)
        with self.lock:
            in_channel = [m for m in self.messages if m["channel"] == channel_id]
        if method == "conversations.history":
            chosen = [m for m in reversed(in_channel) if m.get("thread_ts") in (None, m["ts"])]
        else:
            parent = str(params.get("ts", ""))
            chosen = [m for m in in_channel if m["ts"] == parent or m.get("thread_ts") == parent]
            if not chosen:
                return 200, {"ok": False, "error": "thread_not_found"}, {}
        if params.get("oldest"):  # as Slack: only messages after this time
            chosen = [m for m in chosen if float(m["ts"]) > float(params["oldest"])]
        start = int(params.get("cursor") or 0)  # a page's cursor: where the next one starts
        out = []
        for m in chosen[start : start + limit]:
            item = {k: v for k, v in m.items() if k not in ("channel", "received")}
            if not with_meta:
                item.pop("metadata", None)
            out.append(item)
        more = start + limit < len(chosen)
        body: dict[str, Any] = {"ok": True, "messages": out, "has_more": more}
        body["response_metadata"] = {"next_cursor": str(start + limit) if more else ""}
        self.pages_read.append((method, len(out)))
        return 200, body, {}

    def webhook(self, name: str, params: dict[str, Any]) -> tuple[int, str, dict[str, str]]:
        failure = self._failure("webhook")
        if failure is not None:
            headers = {}
            if failure.retry_after is not None:
                headers["Retry-After"] = str(failure.retry_after)
            return failure.status, failure.body or failure.error, headers
        blocks = params.get("blocks")
        if blocks == []:  # an empty "blocks" array is no message layout: Slack refuses it
            return 400, "invalid_blocks", {}
        if self.refuse_posts or (blocks and self.refuse_blocks):
            return 400, self.refuse_posts or self.refuse_blocks, {}
        with self.lock:
            self.messages.append(
                {
                    "channel": f"webhook:{name}",
                    "text": params.get("text", ""),
                    "blocks": params.get("blocks") or [],
                    "metadata": params.get("metadata"),
                    "received": time.monotonic(),
                }
            )
        return 200, "ok", {}


@contextlib.contextmanager
def running_slack_api(**kw: Any) -> Iterator[SlackApi]:
    api = SlackApi(**kw).start()
    try:
        yield api
    finally:
        api.stop()


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack sends: v0 HMAC-SHA256 of ``v0:{timestamp}:{body}``."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}
