"""Alerts to Slack (a local stand-in of the Web API) and email (a real SMTP server, aiosmtpd)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient

from digestbot.alert_channels import (
    EmailAlertNotifier,
    SlackAlertNotifier,
    build_notifier,
    connect_smtp,
)
from digestbot.alerts import Alert, Alerter, FanOutNotifier
from digestbot.config import SmtpSettings, parse_settings
from digestbot.errors import DeliveryError
from digestbot.scheduler import Daemon
from digestbot.store import SqlStore
from tests.daemon.fakes import LedgerSend

NASTY = Alert(
    "delivery-failed",
    "the digest failed: <!channel> & <https://evil.example|click>",
    profile="attn",
    destination="slack:C1",
    digest_id="d123",
)


class SlackStandIn(BaseHTTPRequestHandler):
    posts: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            args = json.loads(body)
        else:
            args = {k: v[0] for k, v in parse_qs(body).items()}
        args["_auth"] = self.headers.get("Authorization")
        args["_path"] = self.path
        self.server.posts.append(args)  # type: ignore[attr-defined]
        if args.get("channel") == "C_GONE":
            reply: dict[str, Any] = {"ok": False, "error": "channel_not_found"}
        else:
            reply = {"ok": True, "channel": args.get("channel"), "ts": "1700000000.000100"}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlackStandIn)
    server.posts = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def slack_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, inbox
    controller.stop()


def test_slack_alert_is_escaped_and_sent_with_the_token(slack: ThreadingHTTPServer) -> None:
    client = WebClient(token="xoxb-test", base_url=slack_url(slack))
    SlackAlertNotifier(client, "C1").notify(NASTY)
    [post] = slack.posts  # type: ignore[attr-defined]
    assert post["_path"] == "/chat.postMessage"
    assert post["_auth"] == "Bearer xoxb-test"
    assert post["channel"] == "C1"
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in post["text"]
    assert "<!channel>" not in post["text"] and "<https://" not in post["text"]


def test_a_slack_refusal_is_a_delivery_error_naming_the_channel(
    slack: ThreadingHTTPServer,
) -> None:
    client = WebClient(token="xoxb-test", base_url=slack_url(slack))
    with pytest.raises(DeliveryError, match="slack:C_GONE: Slack refused the alert: channel_not"):
        SlackAlertNotifier(client, "C_GONE").notify(NASTY)


def test_email_alert_one_message_per_recipient(smtp: tuple[int, Inbox]) -> None:
    port, inbox = smtp
    settings = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5)
    notifier = EmailAlertNotifier(
        connect_smtp(settings), sender="digestbot <bot@example.org>", to=["a@x.org", "b@x.org"]
    )
    notifier.notify(NASTY)
    assert [rcpt for rcpt, _ in inbox.messages] == [["a@x.org"], ["b@x.org"]]
    mail = message_from_bytes(inbox.messages[0][1])
    assert mail["Subject"] == "digestbot alert: a digest delivery failed"
    assert mail["To"] == "a@x.org"
    body = mail.get_payload(decode=True).decode()
    assert "<!channel> & <https://evil.example|click>" in body  # plain text: shown as is
    assert "digest: d123" in body


def test_smtp_down_is_a_delivery_error() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=free_port(), security="none", timeout=2)
    notifier = EmailAlertNotifier(connect_smtp(settings), sender="bot@x.org", to=["a@x.org"])
    with pytest.raises(DeliveryError, match=r"email:a@x\.org: cannot mail the alert"):
        notifier.notify(NASTY)


def test_a_failed_digest_reaches_slack_and_email_once(
    tmp_path: Path, store: SqlStore, slack: ThreadingHTTPServer, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    (tmp_path / "drops").mkdir()
    settings = parse_settings(
        {
            "drops": {"path": "drops"},
            "slack": {"bot_token": "xoxb-test", "base_url": slack_url(slack)},
            "email": {"smtp": {"host": "127.0.0.1", "port": port, "security": "none"}},
            "alerts": {"slack_channel": "C_ALERTS", "email": ["ops@x.org"]},
            "profiles": [{"name": "attn", "keywords": ["a"]}],
        },
        base=tmp_path,
        env={},
    )
    notifier = build_notifier(settings)
    assert isinstance(notifier, FanOutNotifier) and len(notifier.notifiers) == 3
    send = LedgerSend(fail=["attn"])
    now = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    for _ in range(2):
        daemon = Daemon(
            settings, store, send=send, alerter=Alerter(store, notifier), clock=lambda: now
        )
        assert daemon.run_once() is False
    [post] = slack.posts  # type: ignore[attr-defined]
    assert post["channel"] == "C_ALERTS"
    assert "profile attn to file:out failed: smtp down" in post["text"]
    assert [rcpt for rcpt, _ in inbox.messages] == [["ops@x.org"]]


def test_one_channel_failing_does_not_stop_the_others(
    slack: ThreadingHTTPServer, smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    client = WebClient(token="xoxb-test", base_url=slack_url(slack))
    email = EmailAlertNotifier(
        connect_smtp(SmtpSettings(host="127.0.0.1", port=port, security="none")),
        sender="bot@x.org",
        to=["ops@x.org"],
    )
    FanOutNotifier([SlackAlertNotifier(client, "C_GONE"), email]).notify(NASTY)
    assert len(inbox.messages) == 1
