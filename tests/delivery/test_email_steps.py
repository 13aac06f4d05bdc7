"""The steps of an email too large for the reader's mail server: a compact HTML (no
abstracts) between the full message and the plain text; a bare ``552`` taught about its
reader only; papers left out of a cut email owed until sent (a week at most); ``history``
counting a cut email's papers as "k of n"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trustme

from digestbot.config import Settings
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
from tests.conftest import NOW, as_json, write_config
from tests.delivery.helpers import add_papers, email_deliverer, make_paper, settings_for
from tests.smtp_server import SmtpServer, body_of

DAY = timedelta(days=1)
READERS = ["alice@example.org", "bob@example.org", "carol@example.org"]
# ten papers with long abstracts: the full message (text + HTML) is about 16 kB, the same
# with a compact HTML (no abstracts) about 11 kB, the plain text alone under 3 kB
ABSTRACT = "Linear attention reduces the cost of long sequences in transformers. " * 40
IN_ABSTRACT = "reduces the cost of long sequences"
TOO_BIG = "552 5.3.4 Message too big for system"
COMPACT_NOTE = "sent as compact HTML (no abstracts): the mail server refuses the full message"


def with_papers(store: SqlStore, readers: list[str], count: int = 10) -> Settings:
    settings = settings_for(deliver=[{"email": {"to": readers}}])
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, count + 1)], now=NOW)
    return settings


def config_for(tmp_path: Path, db_url: str, readers: list[str]) -> str:
    to = ", ".join(readers)
    path = write_config(
        tmp_path,
        f"database_url: {db_url}\nemail: {{sender: digest@example.org}}\nprofiles:\n"
        "  - name: attn\n    keywords: [linear attention]\n"
        f"    deliver:\n      - email: {{to: [{to}]}}\n",
    )
    return str(path)


def assert_compact(message: EmailMessage, count: int = 10) -> None:
    """An HTML email (text + HTML alternative) with every title, link and why, no abstract."""
    assert message.get_content_type() == "multipart/alternative"
    html, text = body_of(message, "html"), body_of(message, "plain")
    for i in range(1, count + 1):
        assert f"Linear attention study number {i}</a>" in html
        assert f'href="https://arxiv.org/abs/2611.{i:05d}"' in html
        assert f"Linear attention study number {i}\r\n" in text
    assert html.count("Why:") == count
    assert IN_ABSTRACT not in html and IN_ABSTRACT not in text


def assert_full(message: EmailMessage) -> None:
    assert message.get_content_type() == "multipart/alternative"
    assert IN_ABSTRACT in body_of(message, "html")


@pytest.fixture
def quiet_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    """Takes 12,000 bytes at most (the compact email, not the full one), and says so only
    once a larger message is in (no SIZE in EHLO: ``552 5.3.4`` at DATA)."""
    server = SmtpServer(ca, size_limit=12_000, advertise_size=False).start()
    yield server
    server.stop()


# -- 1. compact HTML, between the full message and the plain text ---------------------------
def test_a_reader_whose_server_refuses_the_full_email_gets_the_compact_html(
    store: SqlStore, quiet_server: SmtpServer, db_url: str, cli: Any, tmp_path: Path
) -> None:
    settings = with_papers(store, READERS)
    deliverers = Deliverers(email=email_deliverer(quiet_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    note = f"{COMPACT_NOTE} ({TOO_BIG})"
    assert [(o.status, o.papers, o.detail) for o in report.outcomes] == [("sent", 10, note)] * 3
    for reader in READERS:
        [received] = quiet_server.handler.to(reader)
        assert_compact(received.message)
        assert len(received.data) <= 12_000
    # the full message went over the wire once (refused), then the compact one to each
    sizes = quiet_server.handler.data_sizes
    assert len(sizes) == 4 and sizes[0] > 12_000 and all(s <= 12_000 for s in sizes[1:])
    for row in load_history(store):
        assert (row.status, row.progress) == ("sent", {"form": "compact", "refused": TOO_BIG})
    statuses = build_status(settings, store, now=NOW)["deliveries"]
    assert {(d["status"], d["note"]) for d in statuses} == {("sent", note)}

    config = config_for(tmp_path, db_url, READERS)
    lines = cli("--config", config, "history").stdout.splitlines()
    assert len(lines) == 3
    assert all(line.endswith(f"  10 papers  ({note})") for line in lines)
    entries = as_json(cli("--config", config, "history", "--json"))
    assert [(e["status"], e["note"]) for e in entries] == [("sent", note)] * 3


def test_an_advertised_size_between_the_two_sends_the_compact_html_at_once(
    store: SqlStore, ca: trustme.CA
) -> None:
    settings = with_papers(store, READERS[:2])
    server = SmtpServer(ca, size_limit=12_000, advertise_size=True).start()
    try:
        report = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(server))
        )
        messages = [server.handler.to(r)[0].message for r in READERS[:2]]
        transfers = len(server.handler.data_sizes)
    finally:
        server.stop()
    assert [o.status for o in report.outcomes] == ["sent", "sent"]
    assert transfers == 2  # no refused try
    for message in messages:
        assert_compact(message)
    assert all(o.detail.startswith(f"{COMPACT_NOTE} (") for o in report.outcomes)
    assert all(o.detail.endswith(" bytes, over its SIZE limit of 12000)") for o in report.outcomes)


def test_a_content_refusal_skips_the_compact_html(store: SqlStore, smtp_server: SmtpServer) -> None:
    """``5.6.x`` refuses the HTML's content: the compact HTML would be refused as well."""
    settings = with_papers(store, READERS[:1], count=2)
    smtp_server.handler.data_replies = ["554 5.6.0 Content rejected"]
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    [outcome] = send_due(settings, store, now=NOW, deliverers=deliverers).outcomes
    assert outcome.status == "sent"
    assert len(smtp_server.handler.data_sizes) == 2
    [received] = smtp_server.handler.received
    assert received.message.get_content_type() == "text/plain"


# -- 2. a bare 552 is about its reader ------------------------------------------------------
def test_a_bare_552_at_data_does_not_shrink_the_other_readers_emails(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """RFC 5321's 552 ("exceeded storage allocation") may be a full mailbox: alice's
    refusal moves alice to the compact HTML, bob and carol still get the full email."""
    settings = with_papers(store, READERS)
    smtp_server.handler.data_replies = ["552 Message size exceeds maximum permitted"]
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["sent"] * 3
    [alice, bob, carol] = (smtp_server.handler.to(r)[0].message for r in READERS)
    assert_compact(alice)
    assert_full(bob)
    assert_full(carol)
    assert "552 Message size exceeds maximum permitted" in report.outcomes[0].detail
    assert [o.detail for o in report.outcomes[1:]] == ["", ""]


def test_a_bare_552_for_a_form_another_reader_took_is_that_readers_mailbox(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """al took the full email; bob's bare 552 for the same message (a few bytes longer: his
    address) cannot be the server's size limit: bob is tried as plain text (no compact, no
    cut lists), carol gets the full email."""
    readers = ["al@example.org", "bob.with.a.long.name@example.org", "carol@example.org"]
    settings = with_papers(store, readers)
    smtp_server.handler.data_replies = ["", "552 Requested mail action aborted: exceeded storage"]
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["sent"] * 3
    [alice, bob, carol] = (smtp_server.handler.to(r)[0].message for r in readers)
    assert_full(alice)
    assert bob.get_content_type() == "text/plain"
    assert_full(carol)
    assert len(smtp_server.handler.data_sizes) == 4


def test_a_bare_552_for_three_readers_with_none_taking_the_form_is_the_servers_limit(
    store: SqlStore, ca: trustme.CA
) -> None:
    """Three readers in a row refused the full email with a bare 552 and no reader's server
    took it: a size limit, not three full mailboxes. The readers after get the compact HTML
    at once (no refused try each)."""
    readers = [f"reader{i}@example.org" for i in range(6)]
    settings = with_papers(store, readers)
    bare = "552 Message size exceeds maximum permitted"
    server = SmtpServer(ca, size_limit=12_000, advertise_size=False, too_big=bare).start()
    try:
        report = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(server))
        )
        sizes = list(server.handler.data_sizes)
        messages = [server.handler.to(r)[0].message for r in readers]
    finally:
        server.stop()
    assert [o.status for o in report.outcomes] == ["sent"] * 6
    for message in messages:
        assert_compact(message)
    assert len([s for s in sizes if s > 12_000]) == 3  # the first three readers' full emails
    assert len(sizes) == 9


def test_a_bare_552_to_mail_from_is_about_the_message_for_every_reader(
    store: SqlStore, smtp_server: SmtpServer
) -> None:
    """Refused at MAIL FROM, before any recipient, a 552 cannot be a reader's mailbox: the
    lesson holds for the readers after (no refused try each)."""
    settings = with_papers(store, READERS)
    smtp_server.handler.mail_replies = ["552 Message size exceeds fixed maximum message size"]
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in report.outcomes] == ["sent"] * 3
    for reader in READERS:
        assert_compact(smtp_server.handler.to(reader)[0].message)
    assert len(smtp_server.handler.mail_commands) == 4


# -- 3. papers left out of a cut email are owed until sent ----------------------------------
def strong_paper(index: int) -> Any:
    """A paper that outranks those of ``with_papers`` for the profile."""
    return make_paper(
        index,
        title=f"Linear attention for linear attention models, part {index}",
        abstract="Linear attention. " * 30,
        upvotes=500 + index,
    )


def send_cut(settings: Settings, store: SqlStore, ca: trustme.CA) -> Any:
    """Today's digest to one reader whose server advertises SIZE 2000: a cut email."""
    small = SmtpServer(ca, size_limit=2_000, advertise_size=True).start()
    try:
        [outcome] = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(small))
        ).outcomes
    finally:
        small.stop()
    return outcome


def cut_then_outranked(store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer) -> set[str]:
    """Day 1: a cut email (SIZE 2000) leaves papers out; day 2: ten new papers outrank them
    (top_k 10). Returns the ids left out."""
    settings = with_papers(store, READERS[:1])
    first = send_cut(settings, store, ca)
    assert first.status == "sent" and 1 <= first.papers < 10
    [row] = load_history(store)
    left_out = {p.paper_id for p in row.papers[first.papers :]}

    add_papers(store, [strong_paper(i) for i in range(11, 21)], now=NOW + DAY)
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    [second] = send_due(settings, store, now=NOW + DAY, deliverers=deliverers).outcomes
    assert (second.status, second.papers) == ("sent", 10)
    second_ids = {p.paper_id for p in load_history(store)[0].papers}
    assert second_ids == {f"2611.{i:05d}" for i in range(11, 21)}  # outranked
    return left_out


def send_to_first_reader(store: SqlStore, smtp_server: SmtpServer, *, now: datetime) -> Any:
    """The profile's digest due ``now`` to the first reader alone, through ``smtp_server``."""
    settings = settings_for(deliver=[{"email": {"to": READERS[:1]}}])
    deliverers = Deliverers(email=email_deliverer(smtp_server))
    [outcome] = send_due(settings, store, now=now, deliverers=deliverers).outcomes
    return outcome


def test_papers_left_out_of_a_cut_email_and_outranked_next_day_come_later(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    left_out = cut_then_outranked(store, ca, smtp_server)
    third = send_to_first_reader(store, smtp_server, now=NOW + 2 * DAY)
    assert (third.status, third.papers) == ("sent", len(left_out))
    assert {p.paper_id for p in load_history(store)[0].papers} == left_out
    assert count_sent(store, destination=f"email:{READERS[0]}") == 20


def test_papers_left_out_are_owed_for_a_week_not_for_ever(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    cut_then_outranked(store, ca, smtp_server)
    # eight days after the cut email (the last digest is not the cut one): nothing owed
    late = send_to_first_reader(store, smtp_server, now=NOW + 8 * DAY)
    assert late.status == "nothing-new"


def test_papers_left_out_are_still_owed_seven_days_on(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    left_out = cut_then_outranked(store, ca, smtp_server)
    week = send_to_first_reader(store, smtp_server, now=NOW + 7 * DAY)
    assert (week.status, week.papers) == ("sent", len(left_out))


# -- 4. history counts a cut email's papers as "k of n" -------------------------------------
def test_history_counts_the_papers_a_cut_email_carried(
    store: SqlStore, ca: trustme.CA, db_url: str, cli: Any, tmp_path: Path
) -> None:
    settings = with_papers(store, READERS[:1])
    outcome = send_cut(settings, store, ca)
    kept = outcome.papers
    assert outcome.status == "sent" and 1 <= kept < 10
    config = config_for(tmp_path, db_url, READERS[:1])
    [line] = cli("--config", config, "history").stdout.splitlines()
    assert f"email:{READERS[0]}  {kept} of 10 papers  (sent as plain text listing {kept}" in line
    [entry] = as_json(cli("--config", config, "history", "--json"))
    assert len(entry["papers"]) == 10  # the digest's papers, as before


def test_an_email_already_compact_for_gmail_has_no_second_compact_step(
    store: SqlStore, ca: trustme.CA
) -> None:
    """90 papers: the full HTML is over Gmail's clipping size, so it leaves the abstracts
    out already; refused, it goes as plain text at once (no same-size compact try)."""
    settings = settings_for(deliver=[{"email": {"to": READERS[:1]}}], top_k=90)
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, 91)], now=NOW)
    server = SmtpServer(ca, size_limit=40_000, advertise_size=False).start()
    try:
        [outcome] = send_due(
            settings, store, now=NOW, deliverers=Deliverers(email=email_deliverer(server))
        ).outcomes
        sizes = list(server.handler.data_sizes)
        [received] = server.handler.received
    finally:
        server.stop()
    assert (outcome.status, outcome.papers) == ("sent", 90)
    assert received.message.get_content_type() == "text/plain"
    assert len(sizes) == 2 and sizes[0] > 40_000
    assert (
        outcome.detail
        == f"sent as plain text: the mail server refuses the full message ({TOO_BIG})"
    )


def test_the_ledger_owes_left_out_papers_of_recent_cut_digests(any_store: SqlStore) -> None:
    """``load_left_out(since=...)``: the latest digest's left-out papers whatever its age,
    and those of every cut digest dated ``since`` or later, unless sent since; on SQLite and
    PostgreSQL."""
    add_papers(any_store, [make_paper(i) for i in range(1, 7)], now=NOW)
    with any_store.transaction() as conn:
        rows = conn.execute(sa.select(papers.c.pk, papers.c.id).order_by(papers.c.pk)).all()
    pk = {paper_id: key for key, paper_id in rows}
    dest = "email:alice@example.org"

    def cut(day: int, ids: tuple[int, ...], kept: int, watermark: int) -> None:
        item = NewDelivery(
            digest_id=f"d{day}",
            profile="attn",
            destination=dest,
            digest_date=(NOW + day * DAY).date(),
            status="pending",
            watermark=watermark,
            papers=tuple((pk[f"2611.{i:05d}"], 1.0, "why") for i in ids),
        )
        [record], _ = record_deliveries(any_store, [item], now=NOW + day * DAY)
        note = {"form": "plain", "refused": "552", "kept": kept, "left_out": len(ids) - kept}
        carried = [f"2611.{i:05d}" for i in ids[:kept]]
        mark_sent_many(
            any_store,
            [(record, f"<d{day}@example.org>")],
            now=NOW + day * DAY,
            progress={record.pk: note},
            only={record.pk: carried},
        )

    cut(0, (1, 2, 3), kept=1, watermark=pk["2611.00003"])  # 2, 3 left out
    cut(1, (4, 2, 5), kept=2, watermark=pk["2611.00006"])  # 2 sent now, 5 left out
    marks = load_watermarks(any_store, profile="attn", destinations=[dest])
    latest = load_left_out(any_store, profile="attn", watermarks=marks)
    assert latest == {dest: {pk["2611.00005"]}}
    week = load_left_out(any_store, profile="attn", watermarks=marks, since=NOW.date())
    assert week == {dest: {pk["2611.00003"], pk["2611.00005"]}}
    later = (NOW + DAY).date()
    assert load_left_out(any_store, profile="attn", watermarks=marks, since=later) == latest
