"""Alerts to Slack (the Web API stand-in) and email (the real SMTP server: STARTTLS, AUTH)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from slack_sdk import WebClient

from digestbot.alert_channels import EmailAlertNotifier, SlackAlertNotifier, build_notifier
from digestbot.alerts import Alert, Alerter, FanOutNotifier
from digestbot.config import parse_settings
from digestbot.delivery.email import build_smtp_factory
from digestbot.errors import DeliveryError
from digestbot.scheduler import Daemon
from digestbot.store import SqlStore
from tests.daemon.fakes import LedgerSend
from tests.delivery.helpers import smtp_settings
from tests.slack_api import SlackApi
from tests.smtp_server import PASSWORD, USER, SmtpServer, free_port

NASTY = Alert(
    "delivery-failed",
    "the digest failed: <!channel> & <https://evil.example|click>",
    profile="attn",
    destination="slack:C1",
    digest_id="d123",
)


def mailer(server: SmtpServer, to: list[str]) -> EmailAlertNotifier:
    factory = build_smtp_factory(smtp_settings(server), ssl_context=server.client_context())
    return EmailAlertNotifier(factory, sender="digestbot <bot@example.org>", to=to)


def test_slack_alert_is_escaped_and_sent_with_the_token(slack_api: SlackApi) -> None:
    client = WebClient(token=slack_api.token, base_url=slack_api.url)
    SlackAlertNotifier(client, "C1").notify(NASTY)
    [post] = slack_api.posted()
    assert slack_api.calls == ["chat.postMessage"]  # the stand-in checks the bearer token
    assert post["channel"] == "C1"
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click&gt;" in post["text"]
    assert "<!channel>" not in post["text"] and "<https://" not in post["text"]


def test_a_rate_limited_slack_alert_waits_and_is_posted(slack_api: SlackApi) -> None:
    # an alert is claimed once: a 429 must not lose it
    from tests.slack_api import Failure

    slack_api.fail_next("chat.postMessage", Failure(status=429, retry_after=0))
    client = WebClient(token=slack_api.token, base_url=slack_api.url)
    SlackAlertNotifier(client, "C1").notify(NASTY)
    [post] = slack_api.posted()
    assert post["channel"] == "C1"


def test_a_slack_refusal_is_a_delivery_error_naming_the_channel(slack_api: SlackApi) -> None:
    slack_api.channel_errors["C_GONE"] = "channel_not_found"
    client = WebClient(token=slack_api.token, base_url=slack_api.url)
    with pytest.raises(DeliveryError, match="slack:C_GONE: Slack refused the alert: channel_not"):
        SlackAlertNotifier(client, "C_GONE").notify(NASTY)


def test_email_alert_one_message_per_recipient(smtp_server: SmtpServer) -> None:
    mailer(smtp_server, ["a@x.org", "b@x.org"]).notify(NASTY)
    received = smtp_server.handler.received
    assert [r.rcpt_tos for r in received] == [["a@x.org"], ["b@x.org"]]
    assert all(r.tls and r.authenticated for r in received)  # delivery's SMTP code path
    mail = received[0].message
    assert mail["Subject"] == "digestbot alert: a digest delivery failed"
    assert mail["To"] == "a@x.org"
    body = mail.get_content()
    assert "<!channel> & <https://evil.example|click>" in body  # plain text: shown as is
    assert "digest: d123" in body


def test_one_refused_alert_recipient_does_not_keep_it_from_the_others(
    smtp_server: SmtpServer,
) -> None:
    # an alert is given once: the addresses after a refused one must still get it
    smtp_server.handler.reject_rcpt["gone@x.org"] = "550 5.1.1 no such user"
    with pytest.raises(DeliveryError, match=r"refused the alert for gone@x\.org"):
        mailer(smtp_server, ["gone@x.org", "b@x.org"]).notify(NASTY)
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["b@x.org"]]


def test_smtp_down_is_a_delivery_error(ca: trustme.CA) -> None:
    down = SmtpServer(ca, port=free_port())  # never started
    with pytest.raises(DeliveryError, match=r"email:a@x\.org: cannot mail the alert"):
        mailer(down, ["a@x.org"]).notify(NASTY)


def test_a_failed_digest_reaches_slack_and_email_once(
    tmp_path: Path,
    store: SqlStore,
    slack_api: SlackApi,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the configured path, as in production: STARTTLS + AUTH, the CA trusted the usual way
    smtp_server.ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    (tmp_path / "drops").mkdir()
    smtp = {"host": "127.0.0.1", "port": smtp_server.port, "security": "starttls"}
    settings = parse_settings(
        {
            "drops": {"path": "drops"},
            "slack": {"bot_token": slack_api.token, "base_url": slack_api.url},
            "email": {"smtp": {**smtp, "username": USER, "password": PASSWORD}},
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
    [post] = slack_api.posted()
    assert post["channel"] == "C_ALERTS"
    assert "profile attn to file:out failed: smtp down" in post["text"]
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["ops@x.org"]]


def test_one_channel_failing_does_not_stop_the_others(
    slack_api: SlackApi, smtp_server: SmtpServer
) -> None:
    slack_api.channel_errors["C_GONE"] = "channel_not_found"
    client = WebClient(token=slack_api.token, base_url=slack_api.url)
    email = mailer(smtp_server, ["ops@x.org"])
    FanOutNotifier([SlackAlertNotifier(client, "C_GONE"), email]).notify(NASTY)
    assert len(smtp_server.handler.received) == 1
