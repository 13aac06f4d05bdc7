"""Where the lexical index lives on a server database, and an index that is not the
database's (another database at the same URL, a restored older copy) being rebuilt."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.persist import default_index_dir, index_dir_for_url, sync_index
from digestbot.ranking.service import rank_listing
from digestbot.store import SqlStore
from digestbot.store.schema import paper_sources, papers
from tests.conftest import NOW, open_postgres_store


def add(store: SqlStore, *items: Paper, when=NOW) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, list(items), now=when)


def topic(n: int, words: str = "graph networks") -> list[Paper]:
    return [Paper(title=f"Paper {i} on {words}", abstract=f"Variant {i}.") for i in range(n)]


def manifest(directory: Path) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((directory / "manifest.json").read_text())
    return found


def listed(store: SqlStore, keywords: list[str], index_dir: Path) -> dict[str, float]:
    """``digestbot rank --json`` (every paper: ids and titles from the index): title -> score."""
    settings = RankingSettings(index_dir=index_dir)
    profile = Profile(name="p", keywords=keywords)
    found = rank_listing(store, profile, now=NOW, settings=settings, index_dir=index_dir)
    return dict(zip(found.titles, found.scores, strict=True))


def unopened(url: str) -> sa.URL:
    return sa.make_url(url)


def test_a_server_database_gets_a_folder_in_the_users_cache() -> None:
    env = {"XDG_CACHE_HOME": "/var/cache/me", "HOME": "/home/me"}
    url = "postgresql+psycopg://bot:secret@db.example:5433/digests"
    found = index_dir_for_url(unopened(url), env)
    assert found is not None
    assert found.parent == Path("/var/cache/me/digestbot")
    assert found.name.startswith("postgresql-") and found.name.endswith(".index")
    assert "secret" not in str(found)
    # the same database: another password or driver keeps the index
    same = "postgresql+psycopg2://bot:other@db.example:5433/digests"
    assert index_dir_for_url(unopened(same), env) == found
    # another database, host, port or user has its own
    for other in (
        "postgresql+psycopg://bot:secret@db.example:5433/other",
        "postgresql+psycopg://bot:secret@db2.example:5433/digests",
        "postgresql+psycopg://bot:secret@db.example:5432/digests",
        "postgresql+psycopg://ops:secret@db.example:5433/digests",
    ):
        assert index_dir_for_url(unopened(other), env) != found
    # without XDG_CACHE_HOME: ~/.cache
    home = index_dir_for_url(unopened(url), {"HOME": "/home/me"})
    assert home == Path("/home/me/.cache/digestbot") / found.name


def test_sqlite_keeps_its_index_beside_the_file_and_memory_has_none(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    db = tmp_path / "d.sqlite3"
    assert index_dir_for_url(unopened(f"sqlite:///{db}"), env) == Path(f"{db}.index")
    assert index_dir_for_url(unopened("sqlite://"), env) is None


def test_an_index_of_another_database_is_rebuilt(tmp_path: Path) -> None:
    index_dir = tmp_path / "shared.index"
    first = SqlStore.open(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    add(first, *topic(5, "graph networks"))
    assert len(sync_index(first, index_dir).pks) == 5
    first.close()
    # another database with as many papers, at the same times, read through the same folder
    second = SqlStore.open(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    add(second, *topic(5, "protein folding"))
    found = listed(second, ["protein"], index_dir)
    assert set(found) == {f"Paper {i} on protein folding" for i in range(5)}
    assert all(score > 0 for score in found.values())
    second.close()


def test_a_restored_older_copy_is_not_served_from_a_newer_index(tmp_path: Path) -> None:
    db = tmp_path / "d.sqlite3"
    store = SqlStore.open(f"sqlite:///{db}")
    index_dir = tmp_path / "d.index"
    add(store, *topic(5))
    sync_index(store, index_dir)
    store.close()
    shutil.copy(db, tmp_path / "backup.sqlite3")
    store = SqlStore.open(f"sqlite:///{db}")
    add(store, Paper(title="Mamba: state space models", abstract="Selective SSMs."))
    assert listed(store, ["mamba"], index_dir)["Mamba: state space models"] > 0
    store.close()
    # the backup comes back, and another paper is ingested after it (same pk, same count)
    shutil.copy(tmp_path / "backup.sqlite3", db)
    store = SqlStore.open(f"sqlite:///{db}")
    add(store, Paper(title="Diffusion models for audio", abstract="Denoising."))
    found = listed(store, ["mamba"], index_dir)
    assert set(found) == {
        *(f"Paper {i} on graph networks" for i in range(5)),
        "Diffusion models for audio",
    }
    assert set(found.values()) == {0}
    store.close()


@pytest.mark.postgres
def test_postgres_keeps_its_index_in_the_cache_and_adds_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = open_postgres_store()
    try:
        directory = default_index_dir(store)
        assert directory is not None and directory.parent == tmp_path / "cache" / "digestbot"
        add(store, *topic(30))
        profile = Profile(name="p", keywords=["state space model"])
        rank_profile(store, profile, now=NOW)
        before = manifest(directory)
        assert len(before["segments"]) == 1
        stamp = (directory / before["segments"][0] / "rows.npy").stat().st_mtime_ns
        rank_profile(store, profile, now=NOW)  # nothing new: nothing written
        assert manifest(directory) == before
        add(
            store,
            Paper(title="Mamba: state space models", abstract="Selective SSMs."),
            when=NOW + timedelta(minutes=1),
        )
        ranked = rank_profile(store, profile, now=NOW)
        assert ranked[0].paper.title == "Mamba: state space models" and len(ranked) == 31
        after = manifest(directory)
        assert after["segments"][0] == before["segments"][0] and len(after["segments"]) == 2
        assert (directory / before["segments"][0] / "rows.npy").stat().st_mtime_ns == stamp
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_a_new_database_at_the_same_url_is_not_served_the_old_index(
    tmp_path: Path,
) -> None:
    index_dir = tmp_path / "pg.index"
    store = open_postgres_store()
    add(store, *topic(5, "graph networks"))
    assert len(listed(store, ["graph"], index_dir)) == 5
    store.close()
    store = open_postgres_store()  # dropped and made again: same URL, same pks and times
    try:
        add(store, *topic(5, "protein folding"))
        found = listed(store, ["protein"], index_dir)
        assert set(found) == {f"Paper {i} on protein folding" for i in range(5)}
        assert all(score > 0 for score in found.values())
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_an_older_copy_of_the_same_database_is_caught(tmp_path: Path) -> None:
    index_dir = tmp_path / "pg.index"
    store = open_postgres_store()
    try:
        add(store, *topic(5))
        add(store, *topic(2, "state space models"), when=NOW + timedelta(minutes=1))
        assert len(listed(store, ["graph"], index_dir)) == 7
        with store.transaction() as conn:  # back to the first five, as a restore would be
            newest = sa.select(papers.c.pk).where(papers.c.title.like("%state space%"))
            conn.execute(paper_sources.delete().where(paper_sources.c.paper_pk.in_(newest)))
            conn.execute(papers.delete().where(papers.c.title.like("%state space%")))
        found = listed(store, ["state space"], index_dir)
        assert set(found) == {f"Paper {i} on graph networks" for i in range(5)}
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_finds_changed_papers_through_an_index(tmp_path: Path) -> None:
    """What a rank asks first (papers changed or added since the index) is indexed on
    PostgreSQL, also in a database made before the index was."""
    store = open_postgres_store()
    try:
        with store.transaction() as conn:
            conn.exec_driver_sql("DROP INDEX ix_papers_updated_at")
        store.close()
        store = SqlStore.open(str(store.engine.url.render_as_string(hide_password=False)))
        add(store, *topic(3))
        with store.transaction() as conn:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: use what exists
            plan = "\n".join(
                row[0]
                for row in conn.exec_driver_sql(
                    "EXPLAIN SELECT pk FROM papers WHERE updated_at > now() OR pk > 3 ORDER BY pk"
                )
            )
        assert "ix_papers_updated_at" in plan
    finally:
        store.close()


def test_sqlite_has_no_updated_at_index(store: SqlStore) -> None:
    with store.transaction() as conn:
        names = {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    assert "ix_papers_updated_at" not in names


@pytest.mark.postgres
def test_postgres_without_a_usable_cache_folder_ranks_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    store = open_postgres_store()
    try:
        assert default_index_dir(store) is None
        assert "ranking.index_dir" in caplog.text
        add(store, *topic(3), Paper(title="Mamba: state space models", abstract="SSMs."))
        ranked = rank_profile(store, Profile(name="p", keywords=["mamba"]), now=NOW)
        assert ranked[0].paper.title == "Mamba: state space models" and len(ranked) == 4
    finally:
        store.close()


def test_the_newest_paper_gaining_an_arxiv_id_does_not_rebuild_the_index(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a blog's paper (a t-… id) is the newest; the next day arXiv lists it: its id becomes
    # the arXiv id, under the same pk. That is the same database, not a restored copy.
    store = SqlStore.open(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    index_dir = tmp_path / "d.index"
    add(store, *topic(5))
    sync_index(store, index_dir)
    segments = manifest(index_dir)["segments"]
    add(
        store,
        Paper(
            title="Paper 4 on graph networks", abstract="V.", arxiv_id="2401.01234", arxiv_version=1
        ),
        when=NOW + timedelta(hours=1),
    )
    with caplog.at_level("WARNING"):
        found = listed(store, ["graph"], index_dir)
    assert "rebuilding" not in caplog.text
    assert set(manifest(index_dir)["segments"]) >= set(segments)
    assert len(found) == 5
    store.close()
    # then retitled (its title id changes): still the same database
    store = SqlStore.open(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    add(
        store,
        Paper(
            title="Graph networks, revised", abstract="V2.", arxiv_id="2401.01234", arxiv_version=2
        ),
        when=NOW + timedelta(days=1),
    )
    caplog.clear()
    with caplog.at_level("WARNING"):
        found = listed(store, ["graph"], index_dir)
    assert "rebuilding" not in caplog.text
    assert "Graph networks, revised" in found
    store.close()
