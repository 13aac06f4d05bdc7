"""The persisted lexical index: incremental, reused, superseding changed papers."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.persist import default_index_dir, sync_index
from digestbot.store import SqlStore
from tests.conftest import NOW


def add(store: SqlStore, *papers: Paper, when=NOW) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, list(papers), now=when)


def manifest(store: SqlStore) -> dict[str, Any]:
    directory = default_index_dir(store)
    assert directory is not None
    found: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return found


def base_papers(n: int = 30) -> list[Paper]:
    return [
        Paper(title=f"Paper {i} on graph networks", abstract=f"Message passing variant {i}.")
        for i in range(n)
    ]


def test_index_lives_next_to_the_sqlite_file(store: SqlStore) -> None:
    directory = default_index_dir(store)
    assert directory is not None and directory.name == "digestbot.sqlite3.index"
    add(store, *base_papers())
    rank_profile(store, Profile(name="p", keywords=["graph"]), now=NOW)
    assert (directory / "manifest.json").is_file()


def test_new_papers_go_into_a_new_segment_without_rebuilding(store: SqlStore) -> None:
    profile = Profile(name="p", keywords=["state space model"])
    add(store, *base_papers())
    first = rank_profile(store, profile, now=NOW)
    assert all(s.score == 0 for s in first)
    before = manifest(store)
    assert len(before["segments"]) == 1
    directory = default_index_dir(store)
    assert directory is not None
    old_segment = directory / before["segments"][0]
    stamp = (old_segment / "rows.npy").stat().st_mtime_ns

    add(
        store,
        Paper(title="Mamba: state space models", abstract="Selective SSMs."),
        when=NOW + timedelta(minutes=1),
    )
    second = rank_profile(store, profile, now=NOW)
    assert second[0].paper.title == "Mamba: state space models" and second[0].score > 0
    assert len(second) == 31
    after = manifest(store)
    assert after["segments"][0] == before["segments"][0]
    assert len(after["segments"]) == 2
    assert (old_segment / "rows.npy").stat().st_mtime_ns == stamp


def test_an_unchanged_store_reuses_the_index(store: SqlStore) -> None:
    add(store, *base_papers())
    profile = Profile(name="p", keywords=["graph"])
    rank_profile(store, profile, now=NOW)
    before = manifest(store)
    again = rank_profile(store, profile, now=NOW)
    assert manifest(store) == before
    assert again[0].score > 0


def test_a_changed_paper_supersedes_its_old_row(store: SqlStore) -> None:
    add(store, Paper(title="A paper", abstract="About gardening."), *base_papers(5))
    profile = Profile(name="p", keywords=["quantization"])
    assert rank_profile(store, profile, now=NOW)[0].score == 0
    add(
        store,
        Paper(title="A paper", abstract="About gardening, and then about quantization."),
        when=NOW + timedelta(minutes=1),
    )
    ranked = rank_profile(store, profile, now=NOW)
    assert len(ranked) == 6
    assert ranked[0].paper.title == "A paper" and ranked[0].score > 0


def test_many_small_ingests_are_merged_and_still_rank_everything(store: SqlStore) -> None:
    profile = Profile(name="p", keywords=["mamba"])
    for i in range(12):
        add(
            store,
            Paper(title=f"Batch {i} mamba", abstract=f"Item {i}."),
            when=NOW + timedelta(minutes=i),
        )
        rank_profile(store, profile, now=NOW)
    assert len(manifest(store)["segments"]) <= 8
    ranked = rank_profile(store, profile, now=NOW)
    assert len(ranked) == 12 and all(s.score > 0 for s in ranked)


def test_a_deleted_index_is_rebuilt(store: SqlStore) -> None:
    add(store, *base_papers())
    profile = Profile(name="p", keywords=["graph"])
    first = [s.paper.id for s in rank_profile(store, profile, now=NOW)]
    directory = default_index_dir(store)
    assert directory is not None
    for path in sorted(directory.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    assert [s.paper.id for s in rank_profile(store, profile, now=NOW)] == first


def test_configured_index_dir_is_used(store: SqlStore, tmp_path: Path) -> None:
    add(store, *base_papers())
    settings = RankingSettings(index_dir=tmp_path / "elsewhere")
    rank_profile(store, Profile(name="p", keywords=["graph"]), now=NOW, settings=settings)
    assert (tmp_path / "elsewhere" / "manifest.json").is_file()
    assert sync_index(store, tmp_path / "elsewhere").n_live == 30


def test_a_paper_written_behind_the_watermark_is_caught_up(store: SqlStore) -> None:
    add(store, *base_papers(5), when=NOW + timedelta(hours=1))
    profile = Profile(name="p", keywords=["hyena"])
    assert len(rank_profile(store, profile, now=NOW)) == 5
    add(store, Paper(title="Hyena hierarchy", abstract="Long convolutions."), when=NOW)
    ranked = rank_profile(store, profile, now=NOW)
    assert len(ranked) == 6 and ranked[0].paper.title == "Hyena hierarchy"


def test_an_outdated_index_is_rebuilt_in_place(store: SqlStore) -> None:
    add(store, *base_papers(5))
    profile = Profile(name="p", keywords=["graph"])
    first = [s.paper.id for s in rank_profile(store, profile, now=NOW)]
    directory = default_index_dir(store)
    assert directory is not None
    data = manifest(store)
    data["version"] = -1
    (directory / "manifest.json").write_text(json.dumps(data))
    assert [s.paper.id for s in rank_profile(store, profile, now=NOW)] == first
    assert manifest(store)["version"] != -1


def test_the_best_n_are_the_prefix_of_the_full_ranking(store: SqlStore) -> None:
    papers = base_papers(40) + [
        Paper(title=f"Graph mamba {i}", abstract="state space models on graphs", upvotes=i % 3)
        for i in range(6)
    ]
    add(store, *papers)
    profile = Profile(name="p", keywords=["mamba", "state space model"])
    full = rank_profile(store, profile, now=NOW)
    for limit in (1, 3, 6, 10, 46):
        best = rank_profile(store, profile, now=NOW, limit=limit)
        assert [(s.paper.id, s.score, s.why) for s in best] == [
            (s.paper.id, s.score, s.why) for s in full[:limit]
        ]
