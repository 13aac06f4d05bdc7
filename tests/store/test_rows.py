"""The lean ingest path (rows built by the parser, written by ``upsert_rows`` on a bulk
connection) against the merge path (``upsert_papers`` + ``record_sources``), on real
SQLite files."""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digestbot.errors import ParseError, StoreError
from digestbot.ingest import (
    _Job,
    ingest_paths,
    list_drop_files,
    load_drop,
    store_drop,
)
from digestbot.sources import drops as drops_module
from digestbot.sources.drops import parse_drop, read_drop
from digestbot.sources.rows import prepare_drop
from digestbot.store import FileRecord, SqlStore
from digestbot.store import rows as rows_module
from digestbot.store.bulk import bulk_writer
from digestbot.store.schema import paper_sources, papers
from digestbot.store.search import catch_up_search_index, search_papers
from tests.conftest import NOW, SEEDS

NEW_ENTRIES = (
    "\nA Brand New Paper About Walruses\n\nWalruses are studied at length here.\n\n"
    "  • 3 authors\n·\nJan 3, 2024 5\n"
    "\nAnother New Paper on Narwhals\n\nNarwhals, too, are studied.\n\n"
    "  • 2 authors\n·\nFeb 4, 2024\n"
)


def drops_folder(tmp_path: Path) -> Path:
    """The samples, a CRLF+BOM copy of one (all papers known), and a sample with two new
    papers appended (known and new papers in one file), in ingest order."""
    folder = tmp_path / "drops"
    shutil.copytree(SEEDS, folder)
    text = (SEEDS / "003_e69bb1ed9e59af63.txt").read_text("utf-8")
    (folder / "004_crlf.txt").write_bytes(
        b"\xef\xbb\xbf" + text.replace("\n", "  \r\n").encode("utf-8")
    )
    mixed = (SEEDS / "000_ca14cdb193ee54f8.txt").read_text("utf-8")
    (folder / "005_mixed.txt").write_text(mixed.rstrip("\n") + "\n" + NEW_ENTRIES, "utf-8")
    return folder


def ingest_by_merge_path(store: SqlStore, files: list[Path]) -> tuple[int, int]:
    """What ingest did before the lean path: ``upsert_papers`` per file, then its sources."""
    new = merged = 0
    for index, path in enumerate(files):
        parsed = read_drop(path)
        at = NOW + timedelta(minutes=index)
        with store.transaction() as conn:
            counts, pks = store.upsert_papers(conn, parsed.papers, now=at)
            store.record_sources(
                conn, [(pks[i], p.source) for i, p in enumerate(parsed.papers) if p.source], now=at
            )
        new, merged = new + counts.new, merged + counts.merged
    return new, merged


def stored(store: SqlStore) -> tuple[list[Any], list[Any]]:
    """Every column of every paper and source row, in primary-key order."""
    with store.transaction() as conn:
        paper_rows = conn.execute(sa.select(papers).order_by(papers.c.pk)).all()
        source_rows = conn.execute(
            sa.select(paper_sources)
            .order_by(paper_sources.c.kind, paper_sources.c.name)
            .order_by(paper_sources.c.entry)
        ).all()
    return [tuple(r) for r in paper_rows], [tuple(r)[1:] for r in source_rows]


def test_lean_path_stores_what_the_merge_path_stores(tmp_path: Path) -> None:
    files = list_drop_files([drops_folder(tmp_path)])
    lean = SqlStore.open(f"sqlite:///{tmp_path / 'lean.sqlite3'}")
    merge = SqlStore.open(f"sqlite:///{tmp_path / 'merge.sqlite3'}")
    new = merged = 0
    for index, path in enumerate(files):  # one call per file: the same ``now`` as above
        report = ingest_paths(lean, [], files=[path], now=NOW + timedelta(minutes=index))
        assert report.ok
        new, merged = new + report.papers_new, merged + report.papers_merged
    assert (new, merged) == ingest_by_merge_path(merge, files) == (188, 2 + 75 + 11)
    lean_papers, lean_sources = stored(lean)
    merge_papers, merge_sources = stored(merge)
    assert len(lean_papers) == 188 and len(lean_sources) == 188 + 75 + 13
    assert lean_papers == merge_papers
    assert lean_sources == merge_sources


def test_one_ingest_of_many_files_in_workers_stores_what_the_merge_path_stores(
    tmp_path: Path,
) -> None:
    files = list_drop_files([drops_folder(tmp_path)])
    lean = SqlStore.open(f"sqlite:///{tmp_path / 'lean.sqlite3'}")
    report = ingest_paths(lean, [], files=files, now=NOW, workers=1)
    assert report.ok and (report.papers_new, report.papers_merged) == (188, 88)
    merge = SqlStore.open(f"sqlite:///{tmp_path / 'merge.sqlite3'}")
    for path in files:
        with merge.transaction() as conn:
            parsed = read_drop(path)
            _, pks = merge.upsert_papers(conn, parsed.papers, now=NOW)
            merge.record_sources(
                conn, [(pks[i], p.source) for i, p in enumerate(parsed.papers) if p.source], now=NOW
            )
    assert stored(lean) == stored(merge)


def test_primary_keys_follow_file_and_entry_order(tmp_path: Path, seeds: Path) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    ingest_paths(store, [seeds], now=NOW, workers=1)
    expected: list[str] = []
    for path in sorted(seeds.glob("*.txt")):
        for paper in read_drop(path).papers:
            if paper.id not in expected:
                expected.append(paper.id)
    with store.transaction() as conn:
        got = conn.execute(sa.select(papers.c.pk, papers.c.id).order_by(papers.c.pk)).all()
    assert [row.id for row in got] == expected
    assert [row.pk for row in got] == list(range(1, 187))


def test_a_crash_mid_file_leaves_that_file_unwritten_and_a_retry_completes(
    tmp_path: Path, seeds: Path
) -> None:
    class CrashOnSecondFile(SqlStore):
        def record_file(self, conn: sa.Connection, record: FileRecord) -> None:
            if record.path.endswith("001_fed84696205d7fbf.txt"):
                raise RuntimeError("power cut after the papers, before the file's record")
            super().record_file(conn, record)

    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    crashing = CrashOnSecondFile(SqlStore.open(url).engine)
    with pytest.raises(RuntimeError, match="power cut"):
        ingest_paths(crashing, [seeds], now=NOW)
    first = len(read_drop(seeds / "000_ca14cdb193ee54f8.txt").papers)
    store = SqlStore.open(url)
    assert store.count_papers() == first  # the first file whole, nothing of the second
    with store.transaction() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 4000
        sources = conn.execute(sa.select(sa.func.count()).select_from(paper_sources)).scalar()
    assert sources == first
    report = ingest_paths(store, [seeds], now=NOW)
    assert (report.count("skipped"), report.count("new"), report.papers_new) == (1, 3, 186 - first)
    assert store.count_papers() == 186


def test_bulk_settings_are_put_back_and_the_wal_is_truncated(tmp_path: Path, seeds: Path) -> None:
    db = tmp_path / "db.sqlite3"
    store = SqlStore.open(f"sqlite:///{db}")
    ingest_paths(store, [seeds], now=NOW, index_search=False)
    with store.engine.connect() as conn:
        pragma = conn.exec_driver_sql
        assert pragma("PRAGMA wal_autocheckpoint").scalar() == 4000
        assert pragma("PRAGMA cache_size").scalar() == -2000
        assert pragma("PRAGMA busy_timeout").scalar() == 10000
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # all checkpointed at the end


def test_search_finds_every_paper_after_a_chunked_index_sync(tmp_path: Path, seeds: Path) -> None:
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    report = ingest_paths(store, [seeds], now=NOW, index_search=False)
    assert report.papers_new == 186
    assert catch_up_search_index(store, step=50) == 186
    assert catch_up_search_index(store, step=50) == 0
    for paper in store.load_papers():
        words = " ".join(paper.title.split()[:6])
        found: list[str] = []
        offset = 0
        while True:  # every page: common words match many papers
            page = search_papers(store, words, limit=50, offset=offset)
            found.extend(p.id for p in page.papers)
            if not page.has_more:
                break
            offset += 50
        assert paper.id in found, paper.title


def test_prepared_rows_merge_duplicates_and_bind_dates_for_the_driver(tmp_path: Path) -> None:
    header = "Daily Papers\n\nJan 8\n\n"
    entry = "Same Paper\n\nAn abstract.\n\n  • 2 authors\n·\nSep 3, 2024 4\n"
    other = "Other\n\nText.\n\n  • 1 author\n·\nJan 2\n"
    text = header + entry + "\n" + entry.replace(" 4\n", " 9\n") + "\n" + other
    drop = tmp_path / "d.txt"
    drop.write_text(text, "utf-8")
    modified = NOW.replace(tzinfo=None)
    parsed = parse_drop(text, name=str(drop), modified=modified)
    sha256 = hashlib.sha256(drop.read_bytes()).hexdigest()
    rows = prepare_drop(
        parsed, name=str(drop), sha256=sha256, modified=modified, now=NOW, drivername="sqlite"
    )
    assert (len(rows.rows), rows.source_slots, rows.merged) == (2, [0, 0, 1], 1)
    by_column = dict(zip(("id", "title_key", "tid", "arxiv_id"), rows.rows[0], strict=False))
    assert by_column["title_key"] == "same paper" and by_column["tid"] == by_column["id"]
    assert rows.rows[0][12] == 9  # upvotes: the highest of the two entries
    assert rows.rows[0][11] == "2024-09-03"  # a DATE as SQLite's driver takes it
    assert rows.sources[0] == ("drop", str(drop), "0", 5, "2026-11-23 09:00:00.000000")
    assert [p.title for p in rows.load_slot_papers()] == ["Same Paper", "Other"]
    drop.write_text(text + "\n", "utf-8")
    with pytest.raises(ParseError, match="changed while being ingested"):
        rows.load_slot_papers()


def test_a_file_changed_before_its_known_papers_merge_fails_alone_and_is_retried(
    tmp_path: Path, seeds: Path
) -> None:
    """The rows came from one content; the merge path would read another: the file fails
    (nothing of it written), the others go in, and the next ingest takes the new content."""
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    ingest_paths(store, [seeds / "000_ca14cdb193ee54f8.txt"], now=NOW)
    copy = tmp_path / "copy.txt"
    text = (seeds / "000_ca14cdb193ee54f8.txt").read_text("utf-8")
    copy.write_text(text.replace("Subscribe", "Subscribe "), "utf-8")
    job = _Job(now=NOW, drivername="sqlite")
    loaded = load_drop(copy, job)
    copy.write_text(text.replace("Subscribe", "Subscribe  "), "utf-8")  # changed since
    with bulk_writer(store) as writer:
        outcome = store_drop(store, writer, loaded, now=NOW)
    assert outcome.status == "failed" and "changed while being ingested" in (outcome.error or "")
    assert store.count_papers() == 11
    report = ingest_paths(store, [copy], now=NOW)
    assert (report.count("new"), report.papers_new, report.papers_merged) == (1, 0, 11)


def test_a_file_another_process_ingested_meanwhile_is_skipped_not_written_twice(
    tmp_path: Path, seeds: Path
) -> None:
    """Two ``ingest`` runs (or one and the daemon) list the same new file: the one that
    writes second finds its content recorded once it holds the write lock, and skips it."""
    db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    first, second = SqlStore.open(db), SqlStore.open(db)
    path = seeds / "001_fed84696205d7fbf.txt"
    loaded = load_drop(path, _Job(now=NOW, drivername="sqlite"))  # listed and parsed...
    report = ingest_paths(first, [path], now=NOW)  # ...while the other process ingests it
    assert (report.count("new"), report.papers_new) == (1, 45)
    with bulk_writer(second) as writer:
        outcome = store_drop(second, writer, loaded, now=NOW + timedelta(seconds=1))
    assert (outcome.status, outcome.papers_new, outcome.papers_merged) == ("skipped", 0, 0)
    with second.engine.connect() as conn:
        files = conn.execute(sa.text("SELECT path, status FROM ingested_files")).all()
        seen = conn.execute(sa.text("SELECT COUNT(*) FROM paper_sources")).scalar()
    assert files == [(str(path), "ok")]
    assert seen == 45
    assert second.count_papers() == 45


HUGE = "99999999999999999999999"  # past any SQL INTEGER: a garbled copy, not a count


def test_a_count_past_the_database_integer_is_stored_bounded_not_a_crash(
    tmp_path: Path, any_store: SqlStore
) -> None:
    # one garbled number (an upvote or author count, an arXiv version) was an OverflowError
    # (SQLite) or "integer out of range" (PostgreSQL) that stopped the whole ingest, and the
    # daemon's watcher met it again at every scan, ingesting no later drop
    folder = tmp_path / "drops"
    folder.mkdir()
    (folder / "001_garbled.txt").write_text(
        "Daily Papers\n\nJan 8\n\nA Paper With Garbled Counts\n\nIts counts are garbled.\n\n"
        f"  • {HUGE} authors\n·\nJan 3, 2024 {HUGE}\n"
        "\nA Paper With Sane Counts\n\nIts counts are fine.\n\n  • 3 authors\n·\nJan 3, 2024 7\n",
        "utf-8",
    )
    (folder / "002_next.txt").write_text(
        "Daily Papers\n\nJan 9\n\nThe Next Day's Paper\n\nIt came the day after.\n\n"
        "  • 2 authors\n·\nJan 4, 2024 3\n",
        "utf-8",
    )
    report = ingest_paths(any_store, [folder], now=NOW, workers=1)
    assert [f.status for f in report.files] == ["new", "new"]
    got = {p.title: p for p in any_store.load_papers()}
    assert got["A Paper With Sane Counts"].upvotes == 7
    assert got["The Next Day's Paper"].upvotes == 3
    garbled = got["A Paper With Garbled Counts"]
    assert garbled.upvotes == 2**31 - 1  # the most the column holds on every database
    assert garbled.authors_count is None  # no count at all


def test_an_arxiv_version_past_the_database_integer_is_no_version(any_store: SqlStore) -> None:
    from digestbot.models import Paper

    papers_in = [
        Paper(title="Versioned", abstract="x", arxiv_id="2401.01234", arxiv_version=int(HUGE)),
        Paper(title="Upvoted", abstract="y", upvotes=int(HUGE), authors_count=-1),
    ]
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, papers_in, now=NOW)
    got = {p.title: p for p in any_store.load_papers()}
    assert got["Versioned"].arxiv_version is None
    assert got["Upvoted"].upvotes == 2**31 - 1 and got["Upvoted"].authors_count is None


def test_a_drop_whose_file_name_is_not_utf8_is_ingested_not_a_crash(
    tmp_path: Path, any_store: SqlStore
) -> None:
    # a name in a legacy encoding (a Windows share, an old zip): its path could not be stored
    # (UnicodeEncodeError: surrogates not allowed), which stopped the whole ingest, and the
    # daemon's watcher met it again at every scan, ingesting no later drop
    folder = tmp_path / "drops"
    folder.mkdir()
    latin1 = os.fsdecode(bytes(folder) + b"/r\xe9sum\xe9.txt")
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", latin1)
    shutil.copy(SEEDS / "001_fed84696205d7fbf.txt", folder / "later.txt")
    Path(os.fsdecode(bytes(folder) + b"/bad\xff.txt")).write_bytes(b"\xff\xfe\x00not text")
    first = ingest_paths(any_store, [folder], now=NOW, workers=1)
    by_path = {f.path: f for f in first.files}
    shown = str(folder / "r\\xe9sum\\xe9.txt")
    assert by_path[shown].status == "new" and by_path[shown].papers_new == 11
    assert by_path[str(folder / "later.txt")].status == "new"
    failed = by_path[str(folder / "bad\\xff.txt")]
    assert failed.status == "failed" and failed.error is not None
    again = {f.path: f for f in ingest_paths(any_store, [folder], now=NOW, workers=1).files}
    assert again[shown].status == "skipped"
    assert again[str(folder / "bad\\xff.txt")].unchanged  # recorded, not parsed again
    with any_store.transaction() as conn:
        names = set(conn.execute(sa.select(paper_sources.c.name)).scalars())
    assert shown in names


def _three_drops(tmp_path: Path) -> Path:
    folder = tmp_path / "drops"
    folder.mkdir()
    for n, day in ((1, 8), (2, 9), (3, 10)):
        (folder / f"00{n}_day.txt").write_text(
            f"Daily Papers\n\nJan {day}\n\nPaper Of Day {day}\n\nAn abstract of day {day}.\n\n"
            f"  • 2 authors\n·\nJan {day}, 2024 3\n",
            "utf-8",
        )
    return folder


def test_a_defect_met_parsing_one_drop_fails_that_drop_alone(
    tmp_path: Path, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an unknown defect in the parser, met by one file only, stopped the whole ingest (and
    # the daemon's watcher at every scan): it is that file's recorded failure now
    folder = _three_drops(tmp_path)
    parse = drops_module.parse_drop_bytes

    def defective(data: bytes, *, name: str, modified: Any) -> Any:
        if name.endswith("002_day.txt"):
            raise RuntimeError("a parser defect")
        return parse(data, name=name, modified=modified)

    monkeypatch.setattr("digestbot.ingest.parse_drop_bytes", defective)
    report = ingest_paths(store, [folder], now=NOW, workers=0)
    assert [f.status for f in report.files] == ["new", "failed", "new"]
    error = report.files[1].error or ""
    assert error.startswith(f"{folder / '002_day.txt'}: unexpected error while parsing it")
    assert "RuntimeError: a parser defect" in error
    assert sorted(p.title for p in store.load_papers()) == ["Paper Of Day 10", "Paper Of Day 8"]
    monkeypatch.undo()  # the defect fixed: the file goes in when tried again
    again = ingest_paths(store, [folder], now=NOW, workers=0, retry_failed=True)
    assert {Path(f.path).name: f.status for f in again.files} == {
        "001_day.txt": "skipped",
        "002_day.txt": "new",
        "003_day.txt": "skipped",
    }
    assert store.count_papers() == 3


def test_a_defect_met_storing_one_drop_writes_none_of_it_and_the_others_go_in(
    tmp_path: Path, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _three_drops(tmp_path)
    upsert = rows_module.upsert_rows

    def defective(store_: SqlStore, conn: Any, rows: Any, *, now: Any) -> Any:
        counts = upsert(store_, conn, rows, now=now)  # written, then the defect: rolled back
        if rows.name.endswith("002_day.txt"):
            raise ValueError("a writer defect")
        return counts

    monkeypatch.setattr("digestbot.ingest.upsert_rows", defective)
    report = ingest_paths(store, [folder], now=NOW, workers=0)
    assert [f.status for f in report.files] == ["new", "failed", "new"]
    assert "unexpected error while storing it (ValueError: a writer defect)" in (
        report.files[1].error or ""
    )
    assert sorted(p.title for p in store.load_papers()) == ["Paper Of Day 10", "Paper Of Day 8"]
    with store.engine.connect() as conn:
        files = conn.execute(sa.text("SELECT path, status FROM ingested_files ORDER BY 1")).all()
    assert [status for _, status in files] == ["ok", "failed", "ok"]


def test_the_database_failing_still_stops_the_ingest(
    tmp_path: Path, store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a locked or unreachable database is no fault of the file: every file would fail
    folder = _three_drops(tmp_path)

    def locked(store_: SqlStore, conn: Any, rows: Any, *, now: Any) -> Any:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr("digestbot.ingest.upsert_rows", locked)
    with pytest.raises(StoreError, match="database is locked"):
        ingest_paths(store, [folder], now=NOW, workers=0)
