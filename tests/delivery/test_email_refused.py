"""A message the mail server refuses for itself (too large, its content) does not loop daily:
it goes out at once as plain text, and refused even so it is ``rejected``, not retried."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import trustme

from digestbot.alerts import Alert, Alerter
from digestbot.config import Settings
from digestbot.delivery.outcomes import SendReport
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.scheduler import Daemon
from digestbot.store import SqlStore
from digestbot.store.ledger import load_history
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, email_deliverer, make_paper, settings_for
from tests.smtp_server import SmtpServer, body_of

DAY = timedelta(days=1)
ALICE = "email:alice@example.org"
# ten papers with long abstracts: the full message (text + HTML) is about 16 kB, its text
# part alone about 3 kB
ABSTRACT = "Linear attention reduces the cost of long sequences in transformers. " * 40


@pytest.fixture
def small_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, size_limit=10_000).start()
    yield server
    server.stop()


def settings_and_papers(store: SqlStore, count: int = 10) -> Settings:
    settings = settings_for(deliver=[{"email": {"to": ["alice@example.org"]}}])
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, count + 1)], now=NOW)
    return settings


def test_a_message_too_large_goes_out_at_once_as_plain_text(
    store: SqlStore, small_server: SmtpServer
) -> None:
    settings = settings_and_papers(store)
    deliverers = Deliverers(email=email_deliverer(small_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    [outcome] = report.outcomes
    assert (outcome.destination, outcome.status, outcome.papers) == (ALICE, "sent", 10)
    # the server advertises SIZE 10000: the full message is not even tried
    assert outcome.detail.startswith("sent as plain text: the mail server refuses the full")
    assert outcome.detail.endswith("bytes, over its SIZE limit of 10000)")
    assert len(small_server.handler.mail_commands) == 1
    [received] = small_server.handler.to("alice@example.org")
    message = received.message
    assert message.get_content_type() == "text/plain"  # no HTML part
    text = body_of(message, "plain")
    assert all(f"Linear attention study number {i}\r\n" in text for i in range(1, 11))
    assert len(received.data) < 10_000
    [row] = load_history(store)
    assert row.status == "sent"


def test_a_message_too_large_even_as_plain_text_is_rejected_not_retried_daily(
    store: SqlStore, ca: trustme.CA
) -> None:
    # one paper's plain text is about 900 bytes: nothing fits; the limit is not advertised
    server = SmtpServer(ca, size_limit=700, advertise_size=False).start()
    try:
        settings = settings_and_papers(store)
        deliverers = Deliverers(email=email_deliverer(server))
        first = send_due(settings, store, now=NOW, deliverers=deliverers)
        later = send_due(settings, store, now=NOW + timedelta(hours=2), deliverers=deliverers)
        received = list(server.handler.received)
    finally:
        server.stop()
    [outcome] = first.outcomes
    assert (outcome.destination, outcome.status) == (ALICE, "rejected")
    assert "552" in outcome.error and "as plain text: 552" in outcome.error
    assert received == []
    # settled: the same day is not tried again (a failed one would be)
    assert [o.status for o in later.outcomes] == ["rejected"]
    [row] = load_history(store)
    assert row.status == "rejected" and row.attempts <= 1


def test_a_content_refusal_at_data_is_rejected_and_a_policy_refusal_stays_failed(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = settings_and_papers(store, count=2)
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    smtp_server.handler.data_replies = ["554 5.6.0 Content rejected", "554 5.6.0 Content rejected"]
    [rejected] = send_due(settings, store, now=NOW, deliverers=deliverers).outcomes
    assert rejected.status == "rejected" and "5.6.0 Content rejected" in rejected.error
    # the next day: a new digest; a policy refusal (the sender not allowed) is no verdict
    # on the message: failed, retried
    smtp_server.handler.data_replies = ["554 5.7.1 Sender address rejected: not permitted"]
    add_papers(store, [make_paper(3, abstract=ABSTRACT)], now=NOW + DAY)
    [failed] = send_due(settings, store, now=NOW + DAY, deliverers=deliverers).outcomes
    assert failed.status == "failed" and "5.7.1" in failed.error
    [retried] = send_due(
        settings, store, now=NOW + DAY + timedelta(hours=1), deliverers=deliverers
    ).outcomes
    assert retried.status == "sent"
    assert len(smtp_server.handler.to("alice@example.org")) == 1


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_a_rejected_email_alerts_once_naming_the_mail_server(
    store: SqlStore, ca: trustme.CA
) -> None:
    server = SmtpServer(ca, size_limit=700).start()  # under one paper's plain text
    try:
        settings = settings_and_papers(store)
        recorder = Recorder()
        deliverers = Deliverers(email=email_deliverer(server))

        def send(
            s: Settings, st: SqlStore, *, now: datetime, as_of: datetime, profiles: list[str]
        ) -> SendReport:
            return send_due(s, st, now=now, as_of=as_of, profiles=profiles, deliverers=deliverers)

        at = NOW.replace(hour=8, minute=1)
        daemon = Daemon(
            settings, store, send=send, alerter=Alerter(store, recorder), clock=lambda: at
        )
        daemon.send_profile("attn")
        daemon.send_profile("attn")
    finally:
        server.stop()
    [alert] = recorder.alerts
    assert alert.kind == "digest-rejected" and alert.destination == ALICE
    assert alert.message.startswith("the mail server refused the digest for profile attn")
