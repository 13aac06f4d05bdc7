"""``bulk_insert``: the same rows on every database (PostgreSQL with psycopg: ``COPY``),
awkward text kept as it is, and a duplicate a database error like any other."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from digestbot.errors import StoreError
from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.schema import paper_sources, papers
from digestbot.store.sql import bulk_insert

WHEN = datetime(2026, 11, 23, 9, 30, 15, 123456)  # naive UTC, as the store keeps times
AWKWARD = 'Tabs\there, a new\nline, a back\\slash, "quotes", \\N, NUL-free ünïcødé 🙂'


def row(pid: str, title: str, abstract: str, published: date | None) -> tuple[object, ...]:
    return (pid, pid, pid, title, abstract, published, 7, "[]", "{}", WHEN, WHEN, WHEN)


COLUMNS = (
    "id",
    "title_key",
    "tid",
    "title",
    "abstract",
    "published",
    "upvotes",
    "urls",
    "extra",
    "first_seen",
    "last_seen",
    "updated_at",
)


def test_rows_come_back_as_they_went_in(any_store: SqlStore) -> None:
    with any_store.transaction() as conn:
        bulk_insert(
            conn,
            papers,
            COLUMNS,
            [row("a", AWKWARD, "", date(2026, 2, 28)), row("b", "Plain", AWKWARD, None)],
        )
    stored = {p.id: p for p in any_store.load_papers()}
    assert stored["a"].title == AWKWARD and stored["a"].abstract == ""
    assert stored["a"].published == date(2026, 2, 28) and stored["a"].upvotes == 7
    assert stored["b"].abstract == AWKWARD and stored["b"].published is None
    assert stored["a"].first_seen == WHEN.replace(tzinfo=UTC)


def test_a_duplicate_fails_the_transaction_and_keeps_nothing(any_store: SqlStore) -> None:
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, [Paper(id="a", title="First", abstract="")], now=WHEN)
    with pytest.raises(StoreError, match="database error"), any_store.transaction() as conn:
        bulk_insert(conn, papers, COLUMNS, [row("b", "New", "", None), row("a", "Dup", "", None)])
    assert [p.id for p in any_store.load_papers()] == ["a"]
    with any_store.transaction() as conn:  # the store is usable afterwards
        bulk_insert(conn, paper_sources, ("paper_pk", "kind", "name", "entry", "seen_at"), [])
        bulk_insert(conn, papers, COLUMNS, [row("c", "Third", "", None)])
    assert sorted(p.id for p in any_store.load_papers()) == ["a", "c"]
