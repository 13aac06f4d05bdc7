"""The persisted index built in bounded segments: ids and titles kept, small segments merged."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.persist import default_index_dir, sync_index
from digestbot.ranking.service import rank_store
from digestbot.store import SqlStore
from tests.conftest import NOW


def add(store: SqlStore, *papers: Paper, when=NOW) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, list(papers), now=when)


def index_dir(store: SqlStore) -> Path:
    directory = default_index_dir(store)
    assert directory is not None
    return directory


def papers(n: int, start: int = 0) -> list[Paper]:
    return [
        Paper(
            title=f"Paper {i}: mamba layers" if i % 7 == 0 else f"Paper {i} on graphs",
            abstract=f"Message passing variant {i}, with state space models."
            if i % 5 == 0
            else f"Message passing variant {i}.",
            upvotes=i % 4,
        )
        for i in range(start, start + n)
    ]


def test_a_bulk_build_writes_one_segment_per_chunk(store: SqlStore) -> None:
    add(store, *papers(25))
    index = sync_index(store, index_dir(store), segment_rows=10)
    assert [s.size for s in index.segments] == [10, 10, 5]
    manifest = json.loads((index_dir(store) / "manifest.json").read_text())
    assert len(manifest["segments"]) == 3
    assert index.n_live == 25


def test_segments_keep_every_papers_id_and_title(store: SqlStore) -> None:
    add(store, *papers(25))
    index = sync_index(store, index_dir(store), segment_rows=10)
    ids, titles = index.labels()
    by_pk = dict(zip(index.pks.tolist(), zip(ids, titles, strict=True), strict=True))
    stored = store.load_papers()
    assert len(stored) == 25
    expected = {p.id: p.title for p in stored}
    assert {pid: title for pid, title in by_pk.values()} == expected


def test_a_chunked_index_ranks_like_the_in_memory_ranker(store: SqlStore) -> None:
    add(store, *papers(37))
    profile = Profile(name="p", keywords=["mamba", "state space model"], description="graphs")
    chunked = sync_index(store, index_dir(store), segment_rows=8)
    assert len(chunked.segments) == 5
    ranked = rank_store(
        store, profile, now=NOW, settings=RankingSettings(), index_dir=index_dir(store)
    )
    reference = rank(store.load_papers(), profile, now=NOW)
    assert [(s.paper.id, s.score, s.why) for s in ranked] == [
        (s.paper.id, s.score, s.why) for s in reference
    ]


def test_small_segments_are_merged_and_a_changed_title_wins(store: SqlStore) -> None:
    add(store, *papers(20))
    directory = index_dir(store)
    sync_index(store, directory, segment_rows=10)  # two full segments
    for i in range(9):  # nine one-paper ingests
        add(store, *papers(1, start=100 + i), when=NOW + timedelta(minutes=i + 1))
        index = sync_index(store, directory, segment_rows=10)
        assert len(index.segments) <= 2 + 6 + 1
    add(
        store,
        Paper(title="Paper 3 on graphs", abstract="Now about mamba.", upvotes=9),
        when=NOW + timedelta(hours=1),
    )
    index = sync_index(store, directory, segment_rows=10)
    assert index.n_live == 29
    assert [s.size for s in index.segments[:2]] == [10, 10]  # full segments never rewritten
    ids, titles = index.labels()
    live = {ids[r]: titles[r] for r in index.live.nonzero()[0].tolist()}
    assert live == {p.id: p.title for p in store.load_papers()}
    row = index.row_of_pk()
    changed = [pk for pk, r in row.items() if titles[r] == "Paper 3 on graphs"]
    assert len(changed) == 1 and int(index.upvotes[row[changed[0]]]) == 9
