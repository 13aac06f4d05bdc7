"""A newsletter over several reused SMTP connections: every reader once, results recorded
in the calling thread, the ledger complete."""

from __future__ import annotations

import threading

from digestbot.delivery.email import EmailDeliverer, EmailResult, OutgoingEmail, build_smtp_factory
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent
from digestbot.store.subscribers import upsert_subscribers
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, make_paper, smtp_settings
from tests.newsletter.conftest import newsletter_settings
from tests.smtp_server import SmtpServer


def parallel_deliverer(server: SmtpServer, connections: int) -> EmailDeliverer:
    factory = build_smtp_factory(smtp_settings(server), ssl_context=server.client_context())
    return EmailDeliverer(
        factory, sender="Paper Digest <digest@example.org>", backoff=0.0, connections=connections
    )


def test_send_all_over_several_connections_reports_in_the_calling_thread(
    smtp_server: SmtpServer,
) -> None:
    from tests.delivery.test_email import CONTENT

    mails = [
        OutgoingEmail(
            to=f"r{i}@example.org", content=CONTENT, message_id=f"<m{i}@x>", profile="attn"
        )
        for i in range(30)
    ]
    threads: set[int] = set()
    results: list[EmailResult] = []
    idles = 0

    def on_result(_mail: OutgoingEmail, result: EmailResult) -> None:
        threads.add(threading.get_ident())
        results.append(result)

    def on_idle() -> None:
        nonlocal idles
        idles += 1

    smtp_server.handler.reject_rcpt["r7@example.org"] = "550 5.1.1 no such user"
    parallel_deliverer(smtp_server, 3).send_all(
        mails, now=NOW, on_result=on_result, on_idle=on_idle
    )
    assert threads == {threading.get_ident()}
    assert sorted(r.to for r in results) == sorted(m.to for m in mails)
    assert [r.to for r in results if not r.ok] == ["r7@example.org"]
    received = smtp_server.handler.received
    assert len(received) == 29 and len({r.rcpt_tos[0] for r in received}) == 29
    assert len({r.session for r in received}) == 3  # three connections, each reused
    assert idles >= 1


def test_send_due_over_several_connections_records_every_reader(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    settings = newsletter_settings(public_url="https://digest.example.org")
    readers = [f"reader{i}@example.org" for i in range(40)]
    upsert_subscribers(
        store, profile="attn", rows=[(a, "daily", "active") for a in readers], now=NOW
    )
    add_papers(store, [make_paper(i) for i in range(1, 6)], now=NOW)
    deliverers = Deliverers(email=parallel_deliverer(smtp_server, 4))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert report.count("sent") == 40
    assert all(count_sent(store, destination=f"email:{a}") == 5 for a in readers)
    again = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert again.count("already-sent") == 40
    assert len(smtp_server.handler.received) == 40
    tokens = {r.message["List-Unsubscribe"] for r in smtp_server.handler.received}
    assert len(tokens) == 40  # each reader's own link


def test_connections_come_from_the_config() -> None:
    from digestbot.delivery.targets import build_deliverers

    settings = newsletter_settings(public_url=None)
    assert build_deliverers(settings).email is not None
    assert build_deliverers(settings).email.connections == 1  # type: ignore[union-attr]
    settings = newsletter_settings(public_url=None)
    data = settings.model_dump()
    data["email"]["smtp"]["connections"] = 4
    data["email"]["unsubscribe_secret"] = "x"
    data["profiles"][0]["schedule"] = {"cron": "0 8 * * *", "timezone": "UTC"}
    from digestbot.config import parse_settings

    four = parse_settings(data, env={})
    assert build_deliverers(four).email.connections == 4  # type: ignore[union-attr]
