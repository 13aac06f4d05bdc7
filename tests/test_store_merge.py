"""Merge semantics of ``upsert_papers`` that feeds rely on (title key -> arXiv id, versions)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from digestbot.models import Paper, SourceRef
from digestbot.store import SqlStore, merge_papers
from digestbot.store.schema import papers
from tests.conftest import NOW


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """Every test here runs on SQLite, and on PostgreSQL where a server is given."""
    return any_store


def upsert(store: SqlStore, *batch: Paper, hours: int = 0) -> tuple[int, int]:
    with store.transaction() as conn:
        counts, _ = store.upsert_papers(conn, list(batch), now=NOW + timedelta(hours=hours))
    return counts.new, counts.merged


def test_a_title_keyed_paper_gains_the_arxiv_id_and_its_public_id_changes(store: SqlStore) -> None:
    upsert(store, Paper(title="Sparse Mixtures, Revisited", abstract="Long abstract here."))
    assert store.get_paper("Sparse Mixtures, Revisited").id.startswith("t-")
    assert upsert(
        store,
        Paper(
            title="Sparse mixtures revisited",
            abstract="Short.",
            arxiv_id="2411.00001",
            arxiv_version=2,
            authors=("A. Author",),
        ),
        hours=1,
    ) == (0, 1)
    paper = store.get_paper("2411.00001v2")
    assert paper.id == "2411.00001" and paper.arxiv_version == 2
    assert paper.abstract == "Long abstract here." and paper.authors == ("A. Author",)
    assert paper.first_seen == NOW and paper.last_seen == NOW + timedelta(hours=1)
    assert store.count_papers() == 1


def test_the_reverse_order_also_merges(store: SqlStore) -> None:
    upsert(store, Paper(title="Sparse Mixtures", abstract="x", arxiv_id="2411.00001"))
    assert upsert(store, Paper(title="SPARSE mixtures!", abstract="longer text"), hours=1) == (0, 1)
    paper = store.get_paper("2411.00001")
    assert paper.title == "Sparse Mixtures" and paper.abstract == "longer text"
    assert store.count_papers() == 1


def test_two_items_of_one_batch_that_match_one_stored_paper_are_both_merged(
    store: SqlStore,
) -> None:
    upsert(store, Paper(title="Old Title", abstract="a", arxiv_id="2411.00002"))
    batch = (
        Paper(title="New Title", abstract="a", arxiv_id="2411.00002", upvotes=5),
        Paper(title="Old title", abstract="a", organization="Lab"),
    )
    assert upsert(store, *batch, hours=1) == (0, 2)
    paper = store.get_paper("2411.00002")
    assert (paper.upvotes, paper.organization) == (5, "Lab")
    assert store.count_papers() == 1


def test_a_newer_version_brings_its_text_and_extra_values_are_updated() -> None:
    old = Paper(
        title="Draft",
        abstract="A much longer first abstract.",
        arxiv_id="2411.00003",
        arxiv_version=1,
        extra={"github_stars": 3, "categories": ["cs.LG"]},
    )
    new = Paper(
        title="Final",
        abstract="Shorter.",
        arxiv_id="2411.00003",
        arxiv_version=3,
        extra={"github_stars": 40},
    )
    merged = merge_papers(old, new)
    assert (merged.title, merged.abstract, merged.arxiv_version) == ("Final", "Shorter.", 3)
    assert merged.extra == {"github_stars": 40, "categories": ["cs.LG"]}
    unversioned = merge_papers(old, Paper(title="Other", abstract="Short", arxiv_id="2411.00003"))
    assert unversioned.title == "Draft" and unversioned.abstract == old.abstract


def test_seeing_a_paper_again_unchanged_moves_only_last_seen(store: SqlStore) -> None:
    paper = Paper(title="Same", abstract="same", arxiv_id="2411.00004", extra={"k": 1})
    upsert(store, paper)
    upsert(store, paper, hours=3)
    with store.transaction() as conn:
        row = conn.execute(sa.select(papers).where(papers.c.id == "2411.00004")).one()
    assert row.updated_at == NOW.replace(tzinfo=None)
    assert row.last_seen == (NOW + timedelta(hours=3)).replace(tzinfo=None)
    assert store.get_paper("2411.00004").extra == {"k": 1}


def test_papers_titled_with_symbols_only_stay_apart_and_recur_as_one(store: SqlStore) -> None:
    feed = SourceRef(kind="feed", name="blog", entry="g")
    batch = [
        Paper(title="∇ ⊗ ∇", abstract="On tensor gradients."),
        Paper(title="∇ ⊗ ∇", abstract="A different paper, same glyphs."),
        Paper(title="???", abstract="Questions."),
        Paper(title="🎉", abstract="A party.", urls=("https://blog.example.org/p/1",), source=feed),
    ]
    assert upsert(store, *batch) == (4, 0)
    assert upsert(store, *batch, hours=1) == (0, 4)
    # the feed item again, with a longer description: merged by its link and rewritten...
    longer = Paper(title="🎉", abstract="A party, told at length.", urls=batch[3].urls, source=feed)
    assert upsert(store, longer, hours=2) == (0, 1)
    # ...keeping the key it is found by
    assert upsert(store, longer, hours=3) == (0, 1)
    assert upsert(store, Paper(title="🎉", abstract="A party."), hours=4) == (1, 0)
    assert store.count_papers() == 5
    stored = {p.abstract: p for p in store.load_papers()}
    assert stored["A party, told at length."].id == batch[3].id


def test_an_entry_listed_twice_in_one_call_is_recorded_once_for_the_last_paper(
    store: SqlStore,
) -> None:
    ref = SourceRef(kind="feed", name="blog", entry="same-guid")
    with store.transaction() as conn:
        _, pks = store.upsert_papers(
            conn, [Paper(title="First", abstract="a"), Paper(title="Second", abstract="b")], now=NOW
        )
        store.record_sources(conn, [(pks[0], ref), (pks[1], ref)], now=NOW)
    sources = {p.title: p.sources for p in store.load_papers(with_sources=True)}
    assert sources == {"First": (), "Second": (ref,)}
