"""The ``/papers`` app served for tests: the real HTTP server on 127.0.0.1, requests
signed exactly as Slack signs them, and the Slack Web API stand-in (``tests.slack_api``)
for the calls the app makes and for ``response_url``."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from slack_sdk import WebClient

from digestbot.config import Settings
from digestbot.server import build_http_server, build_router
from digestbot.slack_app import build_slack_app
from digestbot.store import SqlStore
from tests.conftest import NOW
from tests.slack_api import SlackApi, sign

SECRET = "test-signing-secret-0123456789"
TS = int(NOW.timestamp())


@dataclass
class Running:
    url: str
    slack: SlackApi
    store: SqlStore
    counter: int = 0
    ts: int = TS  # requests are signed at the app's clock

    def post(
        self, body: bytes, *, headers: dict[str, str] | None = None, ts: int | None = None
    ) -> tuple[int, str]:
        sent = {"Content-Type": "application/x-www-form-urlencoded"}
        sent.update(
            sign(SECRET, body, self.ts if ts is None else ts) if headers is None else headers
        )
        request = urllib.request.Request(self.url, data=body, headers=sent, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read().decode()

    def command_body(self, text: str, *, user: str = "U1", channel: str = "C1") -> bytes:
        self.counter += 1
        return urlencode(
            {
                "token": "legacy-unused",
                "team_id": "T1",
                "team_domain": "lab",
                "channel_id": channel,
                "channel_name": "papers",
                "user_id": user,
                "user_name": "ada",
                "command": "/papers",
                "text": text,
                "api_app_id": "A1",
                "is_enterprise_install": "false",
                "response_url": self.slack.response_url(f"cmd{self.counter}"),
                "trigger_id": f"trigger.{self.counter}",
            }
        ).encode()

    def command(self, text: str, **kwargs: str) -> tuple[int, str]:
        return self.post(self.command_body(text, **kwargs))

    def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = "U1",
        message: dict[str, Any] | None = None,
        block_id: str = "digestbot_actions_1",
        ephemeral: bool = False,
        channel: str = "C1",
    ) -> tuple[int, str]:
        """A click on a button, as Slack posts it (``payload=`` JSON of a block_actions)."""
        self.counter += 1
        message_ts = str(message["ts"]) if message is not None else "1700000000.000100"
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {"id": user, "username": "ada", "team_id": "T1"},
            "api_app_id": "A1",
            "token": "legacy-unused",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": ephemeral,
            },
            "trigger_id": f"trigger.{self.counter}",
            "team": {"id": "T1", "domain": "lab"},
            "channel": {"id": channel, "name": "papers"},
            "response_url": self.slack.response_url(f"act{self.counter}"),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": block_id,
                    "value": value,
                    "action_ts": "1700000001.000000",
                    "text": {"type": "plain_text", "text": "x"},
                }
            ],
        }
        if message is not None:
            payload["message"] = message
        return self.post(urlencode({"payload": json.dumps(payload)}).encode())


@contextmanager
def serving_slack_app(
    settings: Settings,
    store: SqlStore,
    slack: SlackApi,
    *,
    now: Callable[[], datetime] = lambda: NOW,
) -> Iterator[Running]:
    """The app for ``settings`` (its ``signing_secret`` must be ``SECRET``) on a free port."""
    client = WebClient(token=slack.token, base_url=slack.url)
    app = build_slack_app(settings, store, client=client, now=now)
    server = build_http_server(build_router(slack_app=app), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/slack/events"
        yield Running(url, slack, store, ts=int(now().timestamp()))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def answer(running: Running, count: int = 1) -> dict[str, Any]:
    """The ``count``-th answer posted to a response_url."""
    return running.slack.wait_for("respond", count=count)[count - 1].body
