"""Subscribers whose address is internationalised (RFC 6530): an IDN domain, a local part
that is not ASCII. One such reader crashed the whole send (smtplib's UnicodeEncodeError at
RCPT TO), so nobody on the newsletter got the digest, day after day."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme

from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.store import SqlStore
from digestbot.store.subscribers import upsert_subscribers
from tests.delivery.helpers import add_papers, email_deliverer, make_paper
from tests.newsletter.conftest import at, newsletter_settings
from tests.smtp_server import SmtpServer

READERS = ["ada@bücher.de", "jörg@example.org", "plain@example.org"]


def _send(store: SqlStore, server: SmtpServer) -> dict[str, str]:
    settings = newsletter_settings(public_url="https://digest.example.org", top_k=3)
    upsert_subscribers(
        store, profile="attn", rows=[(a, "daily", "active") for a in READERS], now=at(1)
    )
    add_papers(store, [make_paper(i) for i in range(1, 5)], now=at(17))
    report = send_due(
        settings, store, now=at(18), deliverers=Deliverers(email=email_deliverer(server))
    )
    return {o.destination: o.status for o in report.outcomes}


def test_an_idn_domain_is_sent_in_its_ascii_form_and_a_utf8_local_part_with_smtputf8(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    statuses = _send(store, smtp_server)
    assert statuses == {f"email:{a}": "sent" for a in READERS}
    handler = smtp_server.handler
    [idn] = handler.to("ada@xn--bcher-kva.de")  # the envelope: IDNA, as SMTP needs
    assert idn.message["To"] == "ada@xn--bcher-kva.de"
    [utf8] = handler.to("jörg@example.org")  # RFC 6531: the server offers SMTPUTF8
    raw = utf8.data.decode("utf-8")
    assert "\r\nTo: jörg@example.org\r\n" in raw  # RFC 6532: UTF-8, not an encoded word
    # the one-click header stays a plain URL (it was folded into encoded words)
    assert "\r\nList-Unsubscribe: <https://digest.example.org/unsubscribe?t=" in raw
    assert len(handler.to("plain@example.org")) == 1


@pytest.fixture
def server_without_smtputf8(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(ca, smtputf8=False).start()
    yield server
    server.stop()


def test_without_smtputf8_only_the_utf8_reader_fails_and_the_others_get_their_mail(
    store: SqlStore, server_without_smtputf8: SmtpServer
) -> None:
    statuses = _send(store, server_without_smtputf8)
    assert statuses["email:ada@bücher.de"] == "sent"
    assert statuses["email:plain@example.org"] == "sent"
    assert statuses["email:jörg@example.org"] == "failed"
    handler = server_without_smtputf8.handler
    assert len(handler.to("ada@xn--bcher-kva.de")) == 1
    assert len(handler.to("plain@example.org")) == 1


def test_a_named_config_recipient_with_an_idn_domain_gets_an_ascii_to_header(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(
        public_url="https://digest.example.org", to=["Zoë <zoe@bücher.de>"]
    )
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=at(17))
    report = send_due(
        settings, store, now=at(18), deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert [o.status for o in report.outcomes] == ["sent"]
    [mail] = smtp_server.handler.to("zoe@xn--bcher-kva.de")
    head = mail.data.split(b"\r\n\r\n")[0].decode("ascii")
    assert "\r\nTo: =?utf-8?q?Zo=C3=AB?= <zoe@xn--bcher-kva.de>\r\n" in head
    assert mail.message["To"].addresses[0].domain == "xn--bcher-kva.de"
