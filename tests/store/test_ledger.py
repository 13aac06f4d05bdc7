"""The delivery ledger on SQLite and PostgreSQL: unique slots, sent papers, catch-up."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from digestbot.delivery.service import send_due
from digestbot.store import SqlStore
from digestbot.store.ledger import (
    NewDelivery,
    claim_deliveries,
    count_sent,
    load_history,
    load_unsent,
    mark_sent,
    record_deliveries,
)
from tests.conftest import NOW
from tests.delivery.helpers import add_papers, make_paper, settings_for


def slot(digest_id: str, papers: tuple[tuple[int, float, str], ...]) -> NewDelivery:
    return NewDelivery(
        digest_id=digest_id,
        profile="attn",
        destination="slack:C1",
        digest_date=date(2026, 11, 23),
        status="pending",
        watermark=2,
        papers=papers,
    )


def test_one_digest_per_slot_and_papers_sent_only_once(any_store: SqlStore) -> None:
    add_papers(any_store, [make_paper(1), make_paper(2)], now=NOW)
    pk_of, _, top = load_unsent(any_store, watermarks={"slack:C1": 0})
    assert top == max(pk_of.values()) and len(pk_of) == 2
    papers = tuple((pk, 1.0, "why") for pk in sorted(pk_of.values()))
    [record], lost = record_deliveries(any_store, [slot("d1", papers)], now=NOW)
    assert lost == [] and [p.paper_id for p in record.papers] == ["2611.00001", "2611.00002"]
    again, lost = record_deliveries(any_store, [slot("d2", papers)], now=NOW)
    assert again == [] and [n.digest_id for n in lost] == ["d2"]
    lease = timedelta(minutes=15)
    assert claim_deliveries(any_store, [record.pk], token="a", now=NOW, lease=lease) == {record.pk}
    assert claim_deliveries(any_store, [record.pk], token="b", now=NOW, lease=lease) == set()
    mark_sent(any_store, record, external_id="1.2", now=NOW)
    mark_sent(any_store, record, external_id="1.2", now=NOW)  # idempotent
    assert count_sent(any_store, destination="slack:C1") == 2
    _, sent, _ = load_unsent(any_store, watermarks={"slack:C1": 0})
    assert sent["slack:C1"] == set(pk_of.values())
    [row] = load_history(any_store)
    assert (row.status, row.external_id, row.attempts) == ("sent", "1.2", 1)


def test_catch_up_through_send_due(any_store: SqlStore, tmp_path: Path) -> None:
    settings = settings_for(deliver=[{"file": {"path": str(tmp_path / "out")}}], top_k=2)
    add_papers(any_store, [make_paper(i) for i in (1, 2, 3)], now=NOW)
    first = send_due(settings, any_store, now=NOW)
    assert [(o.status, o.papers) for o in first.outcomes] == [("sent", 2)]
    add_papers(any_store, [make_paper(4)], now=NOW + timedelta(days=1))
    second = send_due(settings, any_store, now=NOW + timedelta(days=1))
    assert [(o.status, o.papers) for o in second.outcomes] == [("sent", 1)]
    day2 = load_history(any_store)[0]
    assert [p.paper_id for p in day2.papers] == ["2611.00004"]  # the new one, nothing resent
    third = send_due(settings, any_store, now=NOW + timedelta(days=1, hours=2))
    assert [o.status for o in third.outcomes] == ["already-sent"]
