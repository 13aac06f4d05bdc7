"""The paper store on a real SQLite file: dedup, merge, one transaction per file."""

from __future__ import annotations

import multiprocessing
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digestbot.errors import NotFoundError, StoreError
from digestbot.ingest import ingest_paths
from digestbot.models import Paper, SourceRef
from digestbot.store import SqlStore
from digestbot.store.schema import SCHEMA_VERSION, ingested_files, paper_sources, papers
from tests.conftest import NOW, SEEDS
from tests.sources.test_drops import sample_papers


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    return any_store


def count(store: SqlStore, table: sa.Table) -> int:
    with store.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_samples_ingest_to_186_papers_with_188_sources(store: SqlStore, seeds: Path) -> None:
    report = ingest_paths(store, [seeds], now=NOW)
    assert report.ok
    assert (report.count("new"), report.papers_new, report.papers_merged) == (4, 186, 2)
    assert count(store, papers) == 186
    assert count(store, paper_sources) == 188


def test_reingest_is_a_noop(store: SqlStore, seeds: Path) -> None:
    ingest_paths(store, [seeds], now=NOW)
    again = ingest_paths(store, [seeds], now=NOW + timedelta(hours=1))
    assert again.count("skipped") == 4 and again.papers_new == 0 and again.papers_merged == 0
    assert count(store, papers) == 186
    assert count(store, ingested_files) == 4


def test_renamed_copy_is_skipped_by_content(store: SqlStore, seeds: Path, tmp_path: Path) -> None:
    ingest_paths(store, [seeds], now=NOW)
    renamed = tmp_path / "elsewhere" / "renamed.txt"
    renamed.parent.mkdir()
    shutil.copy(seeds / "001_fed84696205d7fbf.txt", renamed)
    report = ingest_paths(store, [renamed], now=NOW)
    assert [f.status for f in report.files] == ["skipped"]
    assert count(store, papers) == 186


def test_crlf_bom_copy_adds_no_paper(store: SqlStore, seeds: Path, tmp_path: Path) -> None:
    ingest_paths(store, [seeds], now=NOW)
    text = (seeds / "003_e69bb1ed9e59af63.txt").read_text("utf-8")
    variant = tmp_path / "crlf.txt"
    variant.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "  \r\n").encode("utf-8"))
    report = ingest_paths(store, [variant], now=NOW)
    assert [f.status for f in report.files] == ["new"]
    assert report.papers_new == 0 and report.papers_merged == 75
    assert count(store, papers) == 186


def test_bad_files_fail_alone_and_others_go_in(store: SqlStore, tmp_path: Path) -> None:
    folder = tmp_path / "drops"
    folder.mkdir()
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", folder / "a.txt")
    (folder / "b.txt").write_bytes(b"\xff\xfe\x00 not text")
    (folder / "c.txt").write_text("# meeting notes\n\nnothing to see\n")
    (folder / "d.txt").write_text("")
    (folder / "e.txt.part").write_text("half written")
    (folder / ".hidden").write_text("dot file")
    report = ingest_paths(store, [folder], now=NOW)
    by_name = {Path(f.path).name: f for f in report.files}
    assert set(by_name) == {"a.txt", "b.txt", "c.txt", "d.txt"}
    assert by_name["a.txt"].status == "new" and by_name["a.txt"].papers_new == 11
    assert by_name["b.txt"].status == "failed" and "b.txt" in (by_name["b.txt"].error or "")
    assert by_name["c.txt"].status == "failed" and "not a Hugging Face" in (
        by_name["c.txt"].error or ""
    )
    assert by_name["d.txt"].status == "empty"
    assert not report.ok
    recorded = {Path(r.path).name: r.status for r in store.recent_files()}
    assert recorded == {"a.txt": "ok", "b.txt": "failed", "c.txt": "failed", "d.txt": "empty"}


def test_failed_file_is_retried_once_fixed(store: SqlStore, tmp_path: Path) -> None:
    drop = tmp_path / "x.txt"
    drop.write_bytes(b"\xff broken")
    assert ingest_paths(store, [drop], now=NOW).count("failed") == 1
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", drop)
    report = ingest_paths(store, [drop], now=NOW)
    assert report.count("new") == 1 and report.papers_new == 11
    assert [r.status for r in store.recent_files()] == ["ok"]


def paper(title: str, **kw: object) -> Paper:
    return Paper(title=title, abstract=str(kw.pop("abstract", "An abstract.")), **kw)  # type: ignore[arg-type]


def test_merge_keeps_highest_upvotes_earliest_first_seen_and_fills_fields(store: SqlStore) -> None:
    first = paper("Same Paper", upvotes=3, published=None)
    with store.transaction() as conn:
        store.upsert_papers(conn, [first], now=NOW)
    later = paper(
        "same   paper!",
        upvotes=9,
        authors_count=4,
        organization="Org",
        published=date(2024, 1, 2),
        urls=("https://github.com/x/y",),
    )
    with store.transaction() as conn:
        counts, _ = store.upsert_papers(conn, [later], now=NOW + timedelta(days=2))
    assert (counts.new, counts.merged) == (0, 1)
    (stored,) = store.load_papers()
    assert stored.title == "Same Paper"
    assert (stored.upvotes, stored.authors_count, stored.organization) == (9, 4, "Org")
    assert stored.published == date(2024, 1, 2)
    assert stored.urls == ("https://github.com/x/y",)
    assert stored.first_seen == NOW
    assert stored.last_seen == NOW + timedelta(days=2)
    lower = paper("Same Paper", upvotes=1)
    with store.transaction() as conn:
        store.upsert_papers(conn, [lower], now=NOW + timedelta(days=3))
    assert store.load_papers()[0].upvotes == 9


def test_title_keyed_paper_gains_arxiv_id(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, [paper("Mamba Things")], now=NOW)
    (before,) = store.load_papers()
    assert before.id.startswith("t-")
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [paper("Mamba things", arxiv_id="2401.01234", arxiv_version=2)], now=NOW
        )
    (after,) = store.load_papers()
    assert (after.id, after.arxiv_id, after.arxiv_version) == ("2401.01234", "2401.01234", 2)
    assert store.get_paper("2401.01234v2").id == "2401.01234"
    assert store.get_paper(before.id).id == "2401.01234"  # old links keep working


def test_same_title_different_arxiv_ids_stay_two_papers(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(
            conn,
            [paper("Attention", arxiv_id="1706.03762"), paper("Attention", arxiv_id="2501.00001")],
            now=NOW,
        )
    assert {p.id for p in store.load_papers()} == {"1706.03762", "2501.00001"}


def test_a_failure_mid_file_leaves_nothing_written(store: SqlStore) -> None:
    batch = [paper(f"Paper {i}") for i in range(50)]
    with pytest.raises(RuntimeError), store.transaction() as conn:
        store.upsert_papers(conn, batch, now=NOW)
        store.record_sources(conn, [(1, SourceRef(kind="drop", name="f", entry="0"))], now=NOW)
        raise RuntimeError("crash before the file is recorded")
    assert count(store, papers) == 0
    assert count(store, paper_sources) == 0


def test_search_is_literal_and_case_insensitive(store: SqlStore, seeds: Path) -> None:
    ingest_paths(store, [seeds], now=NOW)
    titles = {p.title for p in store.load_papers(search="MAMBA diffusion")}
    assert titles == {
        "LaMamba-Diff: Linear-Time High-Fidelity Diffusion Models Based on Local Attention and Mamba",
        "LinFusion: 1 GPU, 1 Minute, 16K Image",
    }
    assert store.load_papers(search="100%") == []  # % is not a wildcard
    with_underscore = {p.title for p in sample_papers() if "_" in p.title or "_" in p.abstract}
    assert 0 < len(with_underscore) < 186
    assert {p.title for p in store.load_papers(search="_")} == with_underscore
    assert store.load_papers(search="'; DROP TABLE papers; --") == []
    assert count(store, papers) == 186


def test_unknown_paper_is_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_paper("2401.99999")


def test_bad_database_url_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        SqlStore.open("nosuchdb://x")


def test_newer_schema_is_refused(store: SqlStore) -> None:
    from digestbot.store.schema import schema_info

    with store.transaction() as conn:
        conn.execute(schema_info.update().values(value="999"))
    with pytest.raises(StoreError, match="newer"):
        store.create_schema()


def test_times_round_trip_as_utc(store: SqlStore) -> None:
    berlin = datetime(2026, 3, 29, 3, 30, tzinfo=UTC) + timedelta()
    with store.transaction() as conn:
        store.upsert_papers(conn, [paper("Clock")], now=berlin)
    assert store.load_papers()[0].first_seen == berlin


def test_parsing_in_worker_processes_gives_the_same_result(
    store: SqlStore, seeds: Path, tmp_path: Path
) -> None:
    copies = tmp_path / "more"
    copies.mkdir()
    for i, path in enumerate(sorted(seeds.glob("*.txt"))):
        # a changed header line makes each copy new content with the same papers
        (copies / f"copy{i}.txt").write_text(
            path.read_text("utf-8").replace("Subscribe", "Subscribe ")
        )
    report = ingest_paths(store, [seeds, copies], now=NOW, workers=1)
    assert report.ok and report.count("new") == 8
    assert (report.papers_new, report.papers_merged) == (186, 188 + 2)
    assert count(store, papers) == 186
    assert [Path(f.path).name for f in report.files][:4] == sorted(
        p.name for p in seeds.glob("*.txt")
    )


def _open_when_released(url: str, barrier: Any) -> str:
    barrier.wait()
    try:
        SqlStore.open(url).close()
    except StoreError as exc:
        return str(exc)
    return "ok"


def test_processes_opening_a_new_database_at_once_all_succeed(tmp_path: Path) -> None:
    """The daemon, ``serve`` and a cron ``fetch`` started together on a fresh install:
    each used to create the tables too, and most failed ("table … already exists")."""
    context = multiprocessing.get_context("spawn")
    workers = 4
    with context.Manager() as manager, context.Pool(workers) as pool:
        for attempt in range(3):
            url = f"sqlite:///{tmp_path / f'new{attempt}.sqlite3'}"
            barrier = manager.Barrier(workers)
            results = pool.starmap(_open_when_released, [(url, barrier)] * workers)
            assert results == ["ok"] * workers
            store = SqlStore.open(url)
            with store.transaction() as conn:
                version = conn.execute(sa.text("SELECT value FROM schema_info WHERE key='version'"))
                assert version.scalars().all() == [str(SCHEMA_VERSION)]  # written once
            store.close()


@pytest.mark.postgres
def test_processes_creating_the_postgres_schema_at_once_all_succeed() -> None:
    """The same on PostgreSQL: an advisory lock makes one process create the tables while
    the others wait for its commit (without it: "relation … already exists")."""
    from tests.conftest import POSTGRES_URL

    assert POSTGRES_URL
    from digestbot.store.schema import metadata

    context = multiprocessing.get_context("spawn")
    workers = 4
    with context.Manager() as manager, context.Pool(workers) as pool:
        for _ in range(3):
            empty = SqlStore.open(POSTGRES_URL, create=False)
            metadata.drop_all(empty.engine)
            empty.close()
            barrier = manager.Barrier(workers)
            results = pool.starmap(_open_when_released, [(POSTGRES_URL, barrier)] * workers)
            assert results == ["ok"] * workers
            store = SqlStore.open(POSTGRES_URL)
            with store.transaction() as conn:
                version = conn.execute(sa.text("SELECT value FROM schema_info WHERE key='version'"))
                assert version.scalars().all() == [str(SCHEMA_VERSION)]  # written once
                changes = conn.execute(sa.text("SELECT count(*) FROM embedding_changes"))
                assert changes.scalar_one() == 1  # the new database's counter made once
            store.close()


def test_opening_a_current_database_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Read-only commands (``status``, ``rank``) open the store while an ingest writes:
    opening must not need the write lock when there is nothing to create."""
    import sqlite3
    import time

    path = tmp_path / "db.sqlite3"
    SqlStore.open(f"sqlite:///{path}").close()
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a long ingest's transaction
    writer.execute("DELETE FROM paper_sources")
    try:
        started = time.monotonic()
        store = SqlStore.open(f"sqlite:///{path}")
        assert store.count_papers() == 0
        assert time.monotonic() - started < 2  # the busy timeout is 10 s
        store.close()
    finally:
        writer.execute("ROLLBACK")
        writer.close()


SYMBOL_DROP = (
    "Daily Papers\n\nNov 20\n\n"
    "∇ ⊗ ∇\n\nOn tensor gradients of fields.\n\n  • 2 authors\n·\nNov 19, 2026 3\n\n"
    "???\n\nA paper titled with question marks.\n\n  • 1 author\n·\nNov 19, 2026 1\n\n"
    "🎉🎉\n\nA paper titled with emoji.\n\n  • 3 authors\n·\nNov 19, 2026 5\n\n"
    "∇ ⊗ ∇\n\nAnother paper, the same glyphs as the first.\n\n  • 4 authors\n·\nNov 19, 2026\n"
)


def test_drop_entries_titled_with_symbols_only_are_distinct_papers(
    store: SqlStore, tmp_path: Path
) -> None:
    first = tmp_path / "a.txt"
    first.write_text(SYMBOL_DROP, encoding="utf-8")
    report = ingest_paths(store, [first], now=NOW)
    assert (report.papers_new, report.papers_merged) == (4, 0)
    # the next day's drop shows one of them again, with more upvotes
    second = tmp_path / "b.txt"
    second.write_text(
        "Daily Papers\n\nNov 21\n\n"
        "???\n\nA paper titled with question marks.\n\n  • 1 author\n·\nNov 19, 2026 9\n",
        encoding="utf-8",
    )
    again = ingest_paths(store, [second], now=NOW + timedelta(days=1))
    assert (again.papers_new, again.papers_merged) == (0, 1)
    assert count(store, papers) == 4
    by_abstract = {p.abstract: p for p in store.load_papers(with_sources=True)}
    assert by_abstract["A paper titled with question marks."].upvotes == 9
    assert len(by_abstract["A paper titled with question marks."].sources) == 2


NOT_A_DROP = "# meeting notes\n\nnothing to see here\n"


def test_an_unchanged_failed_file_is_reported_from_its_record_not_parsed_again(
    store: SqlStore, tmp_path: Path
) -> None:
    drop = tmp_path / "notes.txt"
    drop.write_text(NOT_A_DROP)
    (first,) = ingest_paths(store, [drop], now=NOW).files
    assert first.status == "failed" and not first.unchanged
    assert first.error == f"{drop}:1: not a Hugging Face daily-papers dump" + (
        " (no 'Daily Papers' header, no paper meta blocks)"
    )
    # a later run: the same failure, from the record made at NOW (not parsed again)
    report = ingest_paths(store, [drop], now=NOW + timedelta(hours=1))
    (again,) = report.files
    assert (again.status, again.unchanged, again.error) == ("failed", True, first.error)
    assert not report.ok
    assert [r.ingested_at for r in store.recent_files()] == [NOW]
    # asked to, it is parsed again
    (retried,) = ingest_paths(store, [drop], now=NOW + timedelta(hours=2), retry_failed=True).files
    assert retried.status == "failed" and not retried.unchanged
    assert [r.ingested_at for r in store.recent_files()] == [NOW + timedelta(hours=2)]


def test_a_failed_file_that_changes_is_parsed_again_even_at_the_same_size(
    store: SqlStore, tmp_path: Path
) -> None:
    drop = tmp_path / "notes.txt"
    drop.write_text(NOT_A_DROP)
    ingest_paths(store, [drop], now=NOW)
    drop.write_bytes(NOT_A_DROP.replace("# ", "\xff").encode("latin-1"))
    assert drop.stat().st_size == len(NOT_A_DROP) - 1
    (changed,) = ingest_paths(store, [drop], now=NOW + timedelta(hours=1)).files
    assert changed.status == "failed" and not changed.unchanged
    assert "not UTF-8" in (changed.error or "")
    # the same size, other bytes
    drop.write_bytes(NOT_A_DROP.replace("# ", "\xfe").encode("latin-1"))
    (same_size,) = ingest_paths(store, [drop], now=NOW + timedelta(hours=2)).files
    assert not same_size.unchanged and "bad byte 0xfe" in (same_size.error or "")
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", drop)
    fixed = ingest_paths(store, [drop], now=NOW + timedelta(hours=3))
    assert fixed.count("new") == 1 and fixed.papers_new == 11


def test_editor_backups_and_safari_downloads_are_not_drops(store: SqlStore, tmp_path: Path) -> None:
    folder = tmp_path / "drops"
    (folder / "page.txt.download").mkdir(parents=True)
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", folder / "page.txt")
    (folder / "page.txt~").write_bytes(b"\xff an older, broken copy")  # emacs, vim backupcopy
    (folder / "#page.txt#").write_bytes(b"\xff an auto-save")  # emacs
    half = (SEEDS / "001_fed84696205d7fbf.txt").read_bytes()[:5000]
    (folder / "page.txt.download" / "page.txt").write_bytes(half)  # Safari, still loading
    report = ingest_paths(store, [folder], now=NOW)
    assert [Path(f.path).name for f in report.files] == ["page.txt"]
    assert report.ok and report.papers_new == 11
