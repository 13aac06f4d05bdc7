"""The drops watcher: complete files only, each once; a half-written file waits."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digestbot.errors import SourceError
from digestbot.store import SqlStore
from digestbot.watcher import DropWatcher
from tests.conftest import SEEDS

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
T0 = 1_800_000_000.0  # a fixed wall-clock second for mtimes


class Wall:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def write(path: Path, data: bytes, *, mtime: float, append: bool = False) -> None:
    with path.open("ab" if append else "wb") as handle:
        handle.write(data)
    os.utime(path, (mtime, mtime))


def test_a_half_written_file_is_not_ingested_until_complete(
    tmp_path: Path, store: SqlStore
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    full = (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes()
    target = drops / "today.txt"
    wall = Wall(T0)
    watcher = DropWatcher(drops, settle_seconds=1.0, wall=wall)

    write(target, full[: len(full) // 2], mtime=T0)
    for step in (0.1, 0.5, 0.9):  # the writer is still within the settle time
        wall.now = T0 + step
        assert watcher.ingest_ready(store, now=NOW).files == []
    write(target, full[len(full) // 2 :], mtime=T0 + 1.0, append=True)  # the writer goes on
    wall.now = T0 + 1.5  # the old half would be old enough, but the file changed
    assert watcher.ingest_ready(store, now=NOW).files == []
    assert store.recent_files() == []

    wall.now = T0 + 2.1  # unchanged since the last scan and 1.1 s old: complete
    report = watcher.ingest_ready(store, now=NOW)
    assert [(f.status, f.entries) for f in report.files] == [("new", 11)]
    [record] = store.recent_files()
    assert record.sha256 == hashlib.sha256(full).hexdigest()
    assert store.count_papers() == 11


def test_each_file_once_and_a_changed_file_again(tmp_path: Path, store: SqlStore) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    wall = Wall(T0 + 10)
    watcher = DropWatcher(drops, settle_seconds=1.0, wall=wall)
    first = drops / "a.txt"
    write(first, (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes(), mtime=T0)
    # 10 s old on first sight (moved in whole): read at once
    assert [f.status for f in watcher.ingest_ready(store, now=NOW).files] == ["new"]
    assert watcher.ingest_ready(store, now=NOW).files == []  # handled: not even read again
    write(first, (SEEDS / "001_fed84696205d7fbf.txt").read_bytes(), mtime=T0 + 9.5)
    assert watcher.ingest_ready(store, now=NOW).files == []  # rewritten 0.5 s ago
    wall.now = T0 + 11
    assert [f.status for f in watcher.ingest_ready(store, now=NOW).files] == ["new"]
    assert len(store.recent_files()) == 2


@pytest.mark.parametrize("name", ["x.txt.part", "x.tmp", ".x.txt", "x.crdownload"])
def test_files_still_being_written_by_name_are_skipped(
    tmp_path: Path, store: SqlStore, name: str
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    write(drops / name, (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes(), mtime=T0)
    watcher = DropWatcher(drops, settle_seconds=0.0, wall=Wall(T0 + 100))
    for _ in range(3):
        assert watcher.ingest_ready(store, now=NOW).files == []
    assert store.recent_files() == []


def test_an_old_file_is_read_at_once_and_a_fresh_one_waits(tmp_path: Path, store: SqlStore) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    write(drops / "old.txt", (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes(), mtime=T0)
    write(drops / "fresh.txt", (SEEDS / "001_fed84696205d7fbf.txt").read_bytes(), mtime=T0 + 9.5)
    watcher = DropWatcher(drops, settle_seconds=2.0, wall=Wall(T0 + 10))
    report = watcher.ingest_ready(store, now=NOW)
    assert [Path(f.path).name for f in report.files] == ["old.txt"]


def test_a_missing_drops_folder_is_a_source_error(tmp_path: Path, store: SqlStore) -> None:
    watcher = DropWatcher(tmp_path / "nope", settle_seconds=0.0, wall=Wall(T0))
    with pytest.raises(SourceError, match="nope: the drops folder does not exist"):
        watcher.ingest_ready(store, now=NOW)


def test_a_file_dated_in_the_future_is_read_once_it_stops_changing(
    tmp_path: Path, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    # ``rsync -t`` from a machine whose clock is a day ahead, or a clock stepped back:
    # its age stays negative, so "settle_seconds old" would hold it back until then
    drops = tmp_path / "drops"
    drops.mkdir()
    data = (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes()
    write(drops / "ahead.txt", data, mtime=T0 + 86_400)
    wall = Wall(T0)
    watcher = DropWatcher(drops, settle_seconds=1.0, wall=wall)
    assert watcher.scan().ready == []  # first seen: it may still be being written
    wall.now += 0.5
    assert watcher.scan().ready == []  # unchanged, but not for settle_seconds yet
    wall.now += 1.0
    assert watcher.ingest_ready(store, now=NOW).count("new") == 1
    assert store.count_papers() == 11
    assert "in the future" in caplog.text
    # still being written (its mtime moves): it waits as any file does
    write(drops / "ahead2.txt", data[:100], mtime=T0 + 86_400)
    wall.now += 1.0
    assert watcher.scan().ready == []
    write(drops / "ahead2.txt", data[100:], mtime=T0 + 86_401, append=True)
    wall.now += 2.0
    assert watcher.scan().ready == []
    wall.now += 2.0
    assert watcher.scan().ready == [drops / "ahead2.txt"]


def test_a_restarted_daemon_reports_an_unchanged_failed_file_without_parsing_it(
    tmp_path: Path, store: SqlStore
) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    write(drops / "notes.txt", b"# meeting notes\n\nnothing to see\n", mtime=T0)
    first = DropWatcher(drops, settle_seconds=1.0, wall=Wall(T0 + 10))
    (failed,) = first.ingest_ready(store, now=NOW).files
    assert failed.status == "failed" and not failed.unchanged
    # the daemon restarts: a new watcher sees the file again, unchanged
    later = NOW.replace(hour=10)
    (again,) = (
        DropWatcher(drops, settle_seconds=1.0, wall=Wall(T0 + 20))
        .ingest_ready(store, now=later)
        .files
    )
    assert (again.status, again.unchanged, again.error) == ("failed", True, failed.error)
    assert [r.ingested_at for r in store.recent_files()] == [NOW]  # not parsed, not rewritten
    # touched with new content: parsed again
    write(drops / "notes.txt", (SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes(), mtime=T0 + 30)
    watcher = DropWatcher(drops, settle_seconds=1.0, wall=Wall(T0 + 40))
    assert [f.status for f in watcher.ingest_ready(store, now=later).files] == ["new"]
