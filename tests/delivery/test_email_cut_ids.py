"""A cut email's papers are counted as sent even when one of them changed its id while the
digest was going out: a paper known only by its title (``t-…``) that another process merged
with its arXiv listing meanwhile. The ledger must not offer it to that reader again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import trustme

from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.models import Paper, SourceRef
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent, load_history
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
