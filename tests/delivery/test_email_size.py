"""An email too large for the mail server: the plain-text form is noted where an operator
looks (``history``, ``status``), a server's advertised ``SIZE`` is obeyed without a refused
try, a newsletter learns a refusal once (not once per reader), and a digest too large even
as plain text goes out with the papers that fit, the others kept for the next digest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme

from digestbot.config import Settings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.ledger import (
    NewDelivery,
    count_sent,
    load_history,
    load_left_out,
    load_watermarks,
    mark_sent_many,
    record_deliveries,
)
from digestbot.store.schema import papers
from digestbot.store.subscribers import upsert_subscribers
from tests.conftest import NOW, as_json, write_config
from tests.delivery.helpers import (
    add_papers,
    email_deliverer,
    make_paper,
    settings_for,
    smtp_settings,
)
from tests.newsletter.conftest import at, newsletter_settings
from tests.smtp_server import SmtpServer, body_of

DAY = timedelta(days=1)
READERS = ["alice@example.org", "bob@example.org", "carol@example.org", "dan@example.org"]
# ten papers with long abstracts: the full message (text + HTML) is about 16 kB, its text
# part alone under 3 kB, one paper's plain text about 1 kB
ABSTRACT = "Linear attention reduces the cost of long sequences in transformers. " * 40
TOO_BIG = "552 5.3.4 Message too big for system"


def start(ca: trustme.CA, limit: int, *, advertise: bool) -> SmtpServer:
    return SmtpServer(ca, size_limit=limit, advertise_size=advertise).start()


@pytest.fixture
def quiet_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """Takes 10,000 bytes at most, says so only once a larger message is in (no SIZE)."""
    server = start(ca, 10_000, advertise=False)
    yield server
    server.stop()


@pytest.fixture
def sized_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """Advertises SIZE 10000 in EHLO."""
    server = start(ca, 10_000, advertise=True)
    yield server
    server.stop()


def with_papers(store: SqlStore, readers: list[str], count: int = 10) -> Settings:
    settings = settings_for(deliver=[{"email": {"to": readers}}])
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, count + 1)], now=NOW)
    return settings


def test_an_email_sent_as_plain_text_is_noted_in_history_and_status(
    store: SqlStore, quiet_server: SmtpServer, db_url: str, cli: Any, tmp_path: Path
) -> None:
    settings = with_papers(store, ["alice@example.org"])
    deliverers = Deliverers(email=email_deliverer(quiet_server))
    [outcome] = send_due(settings, store, now=NOW, deliverers=deliverers).outcomes
    # the full message (16 kB) is refused, then its compact HTML (11.6 kB): plain text
    refused = f"{TOO_BIG}; as compact HTML: {TOO_BIG}"
    note = f"sent as plain text: the mail server refuses the full message ({refused})"
    assert (outcome.status, outcome.papers, outcome.detail) == ("sent", 10, note)
    [row] = load_history(store)
    assert row.progress == {"form": "plain", "refused": refused}
    [last] = build_status(settings, store, now=NOW)["deliveries"]
    assert (last["destination"], last["status"], last["note"]) == (
        "email:alice@example.org",
        "sent",
        note,
    )
    config = write_config(
        tmp_path,
        f"database_url: {db_url}\nemail: {{sender: digest@example.org}}\nprofiles:\n"
        "  - name: attn\n    keywords: [linear attention]\n"
        "    deliver:\n      - email: {to: [alice@example.org]}\n",
    )
    [line] = cli("--config", str(config), "history").stdout.splitlines()
    assert line.startswith("2026-11-23  sent")
    assert line.endswith(f"email:alice@example.org  10 papers  ({note})")
    [entry] = as_json(cli("--config", str(config), "history", "--json"))
    assert (entry["status"], entry["note"]) == ("sent", note)
    text = cli("--config", str(config), "--now", NOW.isoformat(), "status").stdout
    assert (
        f"  attn                     email:alice@example.org          2026-11-23 sent  ({note})"
        in text
    )


def test_an_advertised_size_sends_the_plain_text_at_once_with_no_refused_try(
    store: SqlStore, sized_server: SmtpServer
) -> None:
    settings = with_papers(store, READERS[:3])
    deliverers = Deliverers(email=email_deliverer(sized_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [(o.status, o.papers) for o in report.outcomes] == [("sent", 10)] * 3
    # one MAIL FROM per reader, each announcing a size the server takes (before: a first
    # one with the full message's size, refused, then the plain text's)
    commands = sized_server.handler.mail_commands
    assert len(commands) == 3
    sizes = [int(re.search(r"size=(\d+)", c, re.IGNORECASE).group(1)) for c in commands]  # type: ignore[union-attr]
    assert all(size <= 10_000 for size in sizes)
    for reader in READERS[:3]:
        [received] = sized_server.handler.to(reader)
        assert received.message.get_content_type() == "text/plain"
    for outcome in report.outcomes:
        assert outcome.detail.startswith(
            "sent as plain text: the mail server refuses the full message ("
        )
        assert outcome.detail.endswith(" bytes, over its SIZE limit of 10000)")
    for row in load_history(store):
        assert row.progress["form"] == "plain" and "SIZE limit of 10000" in row.progress["refused"]


def test_a_newsletter_too_large_is_transferred_in_full_once_not_once_per_reader(
    store: SqlStore, quiet_server: SmtpServer
) -> None:
    settings = with_papers(store, READERS)
    deliverers = Deliverers(email=email_deliverer(quiet_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["sent"] * 4
    assert all(TOO_BIG in o.detail for o in report.outcomes)  # each reader's note says why
    sizes = quiet_server.handler.data_sizes
    # the full message and its compact HTML went over the wire once each; every reader got
    # the plain text
    assert len([s for s in sizes if s > 10_000]) == 2
    assert len([s for s in sizes if s <= 10_000]) == 4
    assert len(sizes) == 6


def test_parallel_connections_share_what_a_refusal_taught(
    store: SqlStore, quiet_server: SmtpServer
) -> None:
    readers = [f"reader{i}@example.org" for i in range(8)]
    settings = with_papers(store, readers)
    factory = build_smtp_factory(
        smtp_settings(quiet_server), ssl_context=quiet_server.client_context()
    )
    sender = EmailDeliverer(
        factory, sender="Paper Digest <digest@example.org>", backoff=0.0, connections=2
    )
    report = send_due(settings, store, now=NOW, deliverers=Deliverers(email=sender))
    assert [o.status for o in report.outcomes] == ["sent"] * 8
    sizes = quiet_server.handler.data_sizes
    assert len([s for s in sizes if s > 10_000]) <= 4  # full, compact: once per connection
    assert len([s for s in sizes if s <= 10_000]) == 8


def test_too_large_even_as_plain_text_the_papers_that_fit_go_and_the_rest_come_next(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    settings = with_papers(store, ["alice@example.org"])
    small = start(ca, 2_000, advertise=True)
    try:
        [outcome] = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(small))
        ).outcomes
        [received] = small.handler.received
    finally:
        small.stop()
    assert outcome.status == "sent"
    kept = outcome.papers
    assert 1 <= kept < 10
    assert outcome.detail.startswith(
        f"sent as plain text listing {kept} of 10 papers (the other {10 - kept} are "
        "offered again to the next digests): the mail server refuses the full message ("
    )
    assert len(received.data) <= 2_000
    [row] = load_history(store)
    titles = {
        p.paper_id: f"Linear attention study number {int(p.paper_id[-5:])}" for p in row.papers
    }
    order = [p.paper_id for p in row.papers]
    text = body_of(received.message, "plain").replace("\r\n", "\n")
    assert received.message.get_content_type() == "text/plain"
    assert text.startswith("10 new papers for attn")
    shown = [pid for pid in order if f". {titles[pid]}\n" in text]
    assert shown == order[:kept]
    more = 10 - kept
    assert f"...and {more} more paper{'s' if more > 1 else ''}: this email was cut" in text
    # no promise of "the next digest": they are offered again, ranked with the new papers
    they = "It is" if more == 1 else "They are"
    assert f"{they} offered again in your digests of the coming week." in " ".join(text.split())
    assert row.status == "sent" and row.progress["kept"] == kept
    assert row.progress["left_out"] == 10 - kept
    assert count_sent(store, destination="email:alice@example.org") == kept

    # the next day, on a server that takes it all: the papers left out, and the new one
    add_papers(store, [make_paper(11, abstract=ABSTRACT)], now=NOW + DAY)
    [later] = send_due(
        settings, store, now=NOW + DAY, deliverers=Deliverers(email=email_deliverer(smtp_server))
    ).outcomes
    assert (later.status, later.papers, later.detail) == ("sent", 10 - kept + 1, "")
    newest = load_history(store)[0]
    assert {p.paper_id for p in newest.papers} == {*order[kept:], "2611.00011"}
    assert count_sent(store, destination="email:alice@example.org") == 11


def test_a_size_refusal_without_size_cuts_the_list_in_a_bounded_number_of_tries(
    store: SqlStore, ca: trustme.CA
) -> None:
    settings = with_papers(store, ["alice@example.org", "bob@example.org"])
    server = start(ca, 2_000, advertise=False)
    try:
        report = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(server))
        )
        sizes = list(server.handler.data_sizes)
        received = list(server.handler.received)
    finally:
        server.stop()
    assert [o.status for o in report.outcomes] == ["sent", "sent"]
    [alice, bob] = report.outcomes
    assert alice.papers == bob.papers and 1 <= alice.papers < 10
    assert f"{TOO_BIG}; as plain text: {TOO_BIG}" in alice.detail
    assert all(len(r.data) <= 2_000 for r in received) and len(received) == 2
    # alice: in full, as plain text, then cut lists until one fits; bob: that one at once
    assert len(sizes) <= 6 + 1
    assert sizes[-1] == len(received[1].data) and sizes[-2] == len(received[0].data)


def test_a_weekly_reader_gets_the_papers_left_out_in_the_next_weeks_digest(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    """Left out of a weekly digest, a paper is older than a week by the next one: still
    offered (and the one-click unsubscribe link survives the cut)."""
    settings = newsletter_settings(public_url="https://digest.example.org", top_k=10)
    upsert_subscribers(
        store, profile="attn", rows=[("week@example.org", "weekly", "active")], now=at(1)
    )
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, 11)], now=at(17))
    small = start(ca, 2_400, advertise=True)
    try:
        [first] = send_due(
            settings, store, now=at(23), deliverers=Deliverers(email=email_deliverer(small))
        ).outcomes
        [received] = small.handler.received
    finally:
        small.stop()
    assert first.status == "sent" and 1 <= first.papers < 10
    text = body_of(received.message, "plain").replace("\r\n", "\n")
    assert text.startswith("Your week in attn: 10 papers · 16–22 Nov")
    assert "Unsubscribe: https://digest.example.org/unsubscribe?t=" in text
    assert "UNSUBSCRIBE-TOKEN-SLOT" not in text
    [row] = load_history(store)
    left_out = {p.paper_id for p in row.papers[first.papers :]}

    add_papers(store, [make_paper(11, abstract=ABSTRACT)], now=at(28))
    [later] = send_due(
        settings, store, now=at(30), deliverers=Deliverers(email=email_deliverer(smtp_server))
    ).outcomes
    assert later.status == "sent"
    newest = load_history(store)[0]
    assert {p.paper_id for p in newest.papers} == left_out | {"2611.00011"}
    assert count_sent(store, destination="email:week@example.org") == 11


def test_a_full_mailbox_is_about_its_reader_not_the_digest(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """``552 5.2.2`` (mailbox full) at DATA: that reader gets plain text as before, the
    next reader of the same digest still gets it in full."""
    settings = with_papers(store, READERS[:2], count=2)
    smtp_server.handler.data_replies = ["552 5.2.2 Mailbox full"]
    report = send_due(
        settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert [o.status for o in report.outcomes] == ["sent", "sent"]
    [alice, bob] = (smtp_server.handler.to(r)[0].message for r in READERS[:2])
    assert alice.get_content_type() == "text/plain"
    assert bob.get_content_type() == "multipart/alternative"
    assert "5.2.2" in report.outcomes[0].detail and report.outcomes[1].detail == ""


def test_a_mailbox_that_stays_full_is_tried_in_full_and_as_plain_text_only(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """``552 5.2.2`` is about the reader's mailbox: a smaller plain text may still fit its
    quota, but cutting the list again and again would not help: two transfers, then the
    digest is rejected for that reader (the next reader's mail is unaffected)."""
    settings = with_papers(store, READERS[:1], count=4)
    smtp_server.handler.data_replies = ["552 5.2.2 Mailbox full"] * 6
    report = send_due(
        settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(smtp_server))
    )
    assert [o.status for o in report.outcomes] == ["rejected"]
    assert len(smtp_server.handler.data_sizes) == 2
    assert smtp_server.handler.received == []


def test_the_ledger_counts_only_the_papers_a_cut_message_carried(any_store: SqlStore) -> None:
    """``mark_sent_many(only=...)`` and ``load_left_out``, on SQLite and PostgreSQL."""
    add_papers(any_store, [make_paper(i) for i in (1, 2, 3)], now=NOW)
    with any_store.transaction() as conn:
        rows = conn.execute(sa.select(papers.c.pk, papers.c.id).order_by(papers.c.pk)).all()
    pks = {paper_id: pk for pk, paper_id in rows}
    dest = "email:alice@example.org"
    item = NewDelivery(
        digest_id="d1",
        profile="attn",
        destination=dest,
        digest_date=NOW.date(),
        status="pending",
        watermark=max(pks.values()),
        papers=tuple((pks[f"2611.0000{i}"], 1.0 / i, "why") for i in (1, 2, 3)),
    )
    [record], _ = record_deliveries(any_store, [item], now=NOW)
    note = {"form": "plain", "refused": "552", "kept": 1, "left_out": 2}
    mark_sent_many(
        any_store,
        [(record, "<d1@example.org>")],
        now=NOW,
        progress={record.pk: note},
        only={record.pk: ["2611.00001"]},
    )
    assert count_sent(any_store, destination=dest) == 1
    [row] = load_history(any_store)
    assert (row.status, row.progress) == ("sent", note)
    marks = load_watermarks(any_store, profile="attn", destinations=[dest])
    left = load_left_out(any_store, profile="attn", watermarks=marks)
    assert left == {dest: {pks["2611.00002"], pks["2611.00003"]}}
