"""A cut email's papers are counted as sent even when one of them changed its id while the
digest was going out: a paper known only by its title (``t-…``) that another process merged
with its arXiv listing meanwhile. The ledger must not offer it to that reader again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import trustme

from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.models import Paper, SourceRef
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
from tests.conftest import NOW
from tests.delivery.helpers import (
    add_papers,
    email_deliverer,
    make_paper,
    settings_for,
    smtp_settings,
)
from tests.smtp_server import SmtpServer

ABSTRACT = "Linear attention reduces the cost of long sequences in transformers. " * 40
TITLE = "Linear attention linear attention: linear attention for everyone"
READER = "alice@example.org"


def test_a_cut_emails_paper_that_gained_its_arxiv_id_meanwhile_is_not_sent_again(
    store: SqlStore, ca: trustme.CA, smtp_server: SmtpServer
) -> None:
    settings = settings_for(deliver=[{"email": {"to": [READER]}}])
    # the best paper is known by its title only (a drop); nine others by their arXiv ids
    drop = Paper(
        title=TITLE,
        abstract=ABSTRACT,
        upvotes=500,
        source=SourceRef(kind="drop", name="/drops/a.txt", entry="0"),
    )
    assert drop.id.startswith("t-")
    add_papers(store, [drop], now=NOW)
    add_papers(store, [make_paper(i, abstract=ABSTRACT) for i in range(1, 10)], now=NOW)

    def merged_meanwhile(connect: Callable[[], Any]) -> Callable[[], Any]:
        def connect_then_merge() -> Any:
            # the arXiv feed lists that paper while the digest goes out (another process)
            listed = Paper(
                title=TITLE,
                abstract=ABSTRACT,
                arxiv_id="2611.00077",
                arxiv_version=1,
                source=SourceRef(kind="feed", name="arxiv", entry="2611.00077"),
            )
            add_papers(store, [listed], now=NOW)
            return connect()

        return connect_then_merge

    small = SmtpServer(ca, size_limit=2_000, advertise_size=True).start()
    try:
        factory = build_smtp_factory(smtp_settings(small), ssl_context=small.client_context())
        sender = EmailDeliverer(
            merged_meanwhile(factory), sender="Paper Digest <digest@example.org>", backoff=0.0
        )
        [first] = send_due(settings, store, now=NOW, deliverers=Deliverers(email=sender)).outcomes
    finally:
        small.stop()
    assert store.get_paper(drop.id).id == "2611.00077"  # the id changed during the send
    [row] = load_history(store)
    assert row.papers[0].paper_id == "2611.00077"  # the best paper, listed first
    assert first.status == "sent" and 1 <= first.papers < 10
    assert count_sent(store, destination=f"email:{READER}") == first.papers

    # the next day, on a server that takes everything: only the papers left out come
    add_papers(store, [make_paper(11, abstract=ABSTRACT)], now=NOW + timedelta(days=1))
    [later] = send_due(
        settings,
        store,
        now=NOW + timedelta(days=1),
        deliverers=Deliverers(email=email_deliverer(smtp_server)),
    ).outcomes
    assert later.status == "sent"
    newest = load_history(store)[0]
    assert "2611.00077" not in {p.paper_id for p in newest.papers}
    assert later.papers == 10 - first.papers + 1


def test_the_ledger_counts_a_carried_paper_by_the_id_it_had_when_made(
    any_store: SqlStore,
) -> None:
    """``mark_sent_many(only=...)`` names the ``t-…`` id a paper had; it has an arXiv id now
    (SQLite and PostgreSQL). The other paper of the delivery stays unsent."""
    drop = Paper(
        title=TITLE, abstract="a", source=SourceRef(kind="drop", name="/d/a.txt", entry="0")
    )
    add_papers(any_store, [drop, make_paper(1)], now=NOW)
    with any_store.transaction() as conn:
        rows = conn.execute(sa.select(papers.c.pk, papers.c.id).order_by(papers.c.pk)).all()
    pks = {paper_id: pk for pk, paper_id in rows}
    dest = f"email:{READER}"
    item = NewDelivery(
        digest_id="d1",
        profile="attn",
        destination=dest,
        digest_date=NOW.date(),
        status="pending",
        watermark=max(pks.values()),
        papers=((pks[drop.id], 1.0, "why"), (pks["2611.00001"], 0.5, "why")),
    )
    [record], _ = record_deliveries(any_store, [item], now=NOW)
    listed = Paper(title=TITLE, abstract="a", arxiv_id="2611.00077", arxiv_version=1)
    add_papers(any_store, [listed], now=NOW)
    assert any_store.get_paper(drop.id).id == "2611.00077"
    mark_sent_many(
        any_store,
        [(record, "<d1@example.org>")],
        now=NOW,
        progress={record.pk: {"form": "plain", "refused": "552", "kept": 1, "left_out": 1}},
        only={record.pk: [drop.id]},
    )
    assert count_sent(any_store, destination=dest) == 1
    marks = load_watermarks(any_store, profile="attn", destinations=[dest])
    assert load_left_out(any_store, profile="attn", watermarks=marks) == {dest: {pks["2611.00001"]}}
