"""A paper whose id changes between a digest's planning and its rendering stays in the digest.

A paper known by its title only (``t-…``, a drop) gains its arXiv id when a feed lists it
(another process). The digest's rows hold the paper by its row key; the digest must render
it under the id it has now, and count as sent exactly what each message carried."""

from __future__ import annotations

from pathlib import Path

from digestbot.delivery.files import FileDeliverer
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
    slack_deliverer,
)
from tests.slack_api import SlackApi
from tests.smtp_server import SmtpServer, body_of

TITLE = "Linear attention linear attention: linear attention for everyone"
ARXIV = "2611.00077"
READER = "alice@example.org"


class MergingFiles(FileDeliverer):
    """Writes the file, and meanwhile the arXiv feed lists the drop's paper (the poll of
    another process merges it into the stored row: same row, new id)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.merged = False

    def write(self, directory: Path, name: str, content: str) -> Path:
        if not self.merged:
            listed = Paper(
                title=TITLE,
                abstract="Linear attention for long sequences.",
                arxiv_id=ARXIV,
                arxiv_version=1,
                source=SourceRef(kind="feed", name="arxiv", entry=ARXIV),
            )
            add_papers(self.store, [listed], now=NOW)
            self.merged = True
        return super().write(directory, name, content)


def slack_block_ids(api: SlackApi) -> list[str]:
    return [
        str(block["block_id"]).split(":", 1)[1]
        for message in api.posted()
        for block in message["blocks"]
        if str(block.get("block_id", "")).startswith("paper:")
    ]


def test_a_paper_that_gains_its_arxiv_id_before_its_render_is_in_the_message(
    any_store: SqlStore, tmp_path: Path, slack_api: SlackApi, smtp_server: SmtpServer
) -> None:
    """SQLite and PostgreSQL: a file, a Slack channel and an email reader; the merge
    happens while the file is written, before the Slack post and the email are rendered."""
    store = any_store
    out = tmp_path / "out"
    settings = settings_for(
        deliver=[
            {"file": {"path": str(out)}},  # sent first: the merge happens while it is written
            {"slack": {"channel": "#papers"}},
            {"email": {"to": [READER]}},
        ]
    )
    drop = Paper(
        title=TITLE,
        abstract="Linear attention for long sequences.",
        upvotes=500,
        source=SourceRef(kind="drop", name="/drops/a.txt", entry="0"),
    )
    assert drop.id.startswith("t-")
    add_papers(store, [drop, make_paper(1), make_paper(2)], now=NOW)
    files = MergingFiles(store)
    deliverers = Deliverers(
        slack=slack_deliverer(slack_api), email=email_deliverer(smtp_server), files=files
    )

    report = send_due(settings, store, now=NOW, deliverers=deliverers)

    assert files.merged and store.get_paper(drop.id).id == ARXIV
    assert [(o.destination, o.status, o.papers) for o in report.outcomes] == [
        (f"file:{out.resolve()}:markdown", "sent", 3),
        ("slack:#papers", "sent", 3),
        (f"email:{READER}", "sent", 3),
    ]
    # the file was rendered before the merge: the paper under its title id
    assert TITLE in (out / "attn-2026-11-23.md").read_text(encoding="utf-8")
    # Slack and the email, rendered after it: the paper under its arXiv id, not left out
    assert sorted(slack_block_ids(slack_api)) == ["2611.00001", "2611.00002", ARXIV]
    [mail] = smtp_server.handler.to(READER)
    text = body_of(mail.message, "plain")
    assert TITLE in text and f"arxiv.org/abs/{ARXIV}" in text
    assert "3 new papers" in str(mail.message["Subject"])
    # what was counted as sent is what went out: all three, everywhere
    for destination in ("slack:#papers", f"email:{READER}"):
        assert count_sent(store, destination=destination) == 3
    assert {row.papers[0].paper_id for row in load_history(store)} == {ARXIV}
