"""The persisted index built in bounded segments: ids and titles kept, small segments merged."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.labels import pack, unpack
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


def test_packed_strings_come_back_as_they_went_in() -> None:
    for strings in ([], [""], ["a", "", "é\x00x", "zz"], ["ab", "cd"], ["x\x00"], ["“q”", "🙂"]):
        assert unpack(*pack(strings)) == strings


def _age_database_files(store: SqlStore, seconds: int) -> None:
    database = store.engine.url.database
    assert database is not None
    for path in (Path(database), Path(database + "-wal")):
        if path.exists():
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - seconds * 1_000_000_000))


def test_an_unchanged_database_file_is_trusted_and_a_write_is_seen(store: SqlStore) -> None:
    add(store, *papers(5))
    directory = index_dir(store)
    assert sync_index(store, directory).n_live == 5
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest.get("signature") is None  # just written: not trusted yet
    _age_database_files(store, 10)
    sync_index(store, directory)
    signed = json.loads((directory / "manifest.json").read_text())
    assert signed["signature"] is not None and signed["segments"] == manifest["segments"]
    assert sync_index(store, directory).n_live == 5
    assert json.loads((directory / "manifest.json").read_text()) == signed
    add(store, *papers(1, start=50), when=NOW + timedelta(minutes=1))
    _age_database_files(store, 10)
    index = sync_index(store, directory)
    assert index.n_live == 6
    assert "Paper 50 on graphs" in index.labels()[1]
