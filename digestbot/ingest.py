"""Ingest drop files: list, hash, parse, store. One transaction per file.

A file whose content (SHA-256) was ingested before is skipped, whatever its
name. A file that cannot be read or parsed is recorded as failed with its
error, and the others still go in. A failed file found again unchanged (same
path, size and SHA-256) is not parsed again: it is reported failed with the
error recorded for it (``unchanged``), until it changes or ``retry_failed``.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa

from digestbot.errors import ParseError, SourceError, StoreError
from digestbot.sources.drops import drop_path, parse_drop_bytes, path_text
from digestbot.sources.rows import PaperRows, prepare_drop
from digestbot.store import FileRecord, SqlStore
from digestbot.store.bulk import BulkWriter, bulk_writer
from digestbot.store.rows import upsert_rows
from digestbot.store.sql import take_write_lock

log = logging.getLogger(__name__)

# still being written (browsers' partial downloads: Firefox, Chrome, Safari's bundle
# folder), an editor's swap file or backup copy (``drop.txt~``, ``#drop.txt#``)
IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".download", ".swp", "~", "#")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    status: str  # new | empty | skipped | failed
    entries: int = 0
    papers_new: int = 0
    papers_merged: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()
    # failed before with this same content: not parsed again, ``error`` is the recorded one
    unchanged: bool = False


@dataclass(slots=True)
class IngestReport:
    files: list[FileOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def papers_new(self) -> int:
        return sum(f.papers_new for f in self.files)

    @property
    def papers_merged(self) -> int:
        return sum(f.papers_merged for f in self.files)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "files": {
                "new": self.count("new") + self.count("empty"),
                "skipped": self.count("skipped"),
                "failed": self.count("failed"),
            },
            "papers": {"new": self.papers_new, "merged": self.papers_merged},
            "details": [
                {
                    "path": f.path,
                    "status": f.status,
                    "entries": f.entries,
                    "papers_new": f.papers_new,
                    "papers_merged": f.papers_merged,
                    "error": f.error,
                    "warnings": list(f.warnings),
                    "unchanged": f.unchanged,
                }
                for f in self.files
            ],
        }


def is_ignored(path: Path) -> bool:
    """Dot-files, files still being written (``*.part``, ``*.tmp``…) and editors' backup
    copies (``*~``, ``#*#``) are not drops."""
    return path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES)


def in_drops_folder(path: str, folder: Path) -> bool:
    """Whether a recorded file path is in the drops folder (both made absolute, links
    resolved). ``status`` lists as failed drops only these: a file that failed through
    ``ingest PATH`` elsewhere was that command's error (its exit code, its output), not a
    problem of the folder; it is still not parsed again while unchanged."""
    try:
        return drop_path(path).resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return False


def list_drop_files(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, plus every file under named folders, sorted; missing paths raise."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not any(is_ignored(Path(part)) for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            found.append(path)
        else:
            raise SourceError("no such file or folder", source=path_text(path))
    return found


@dataclass(frozen=True, slots=True)
class _Loaded:
    """A drop file read, hashed, parsed and turned into rows, ready to be written."""

    path: str
    size: int
    sha256: str
    rows: PaperRows | None = None
    entries: int = 0
    warnings: tuple[str, ...] = ()
    error: str | None = None

    def outcome(self, status: str, *, papers_new: int = 0, papers_merged: int = 0) -> FileOutcome:
        """What became of the file (``failed`` carries the error, others the parse)."""
        return FileOutcome(
            path=self.path,
            status=status,
            entries=self.entries,
            papers_new=papers_new,
            papers_merged=papers_merged,
            error=self.error,
            warnings=self.warnings,
        )

    def record(self, outcome: FileOutcome, *, now: datetime) -> FileRecord:
        """The row that remembers the file (by hash), for the outcome."""
        status = {"new": "ok"}.get(outcome.status, outcome.status)
        return FileRecord(
            path=self.path,
            size=self.size,
            sha256=self.sha256,
            ingested_at=now,
            status=status,
            error=outcome.error,
            entries=outcome.entries,
            papers_new=outcome.papers_new,
            papers_merged=outcome.papers_merged,
            warnings=outcome.warnings,
        )


@dataclass(frozen=True, slots=True)
class _Job:
    """What a worker needs besides the path: the ingest's time and the database driver."""

    now: datetime
    drivername: str


def load_drop(path: Path, job: _Job) -> _Loaded:
    """Read, hash, parse one file and build its rows (pure but for the read; runs in a
    worker process)."""
    name = path_text(path)
    try:
        data = path.read_bytes()
        modified = datetime.fromtimestamp(path.stat().st_mtime)
    except OSError as exc:
        return _Loaded(name, 0, "", error=f"{name}: cannot read: {exc.strerror or exc}")
    sha256 = hashlib.sha256(data).hexdigest()
    try:
        parsed = parse_drop_bytes(data, name=name, modified=modified)
        rows = prepare_drop(
            parsed,
            name=name,
            sha256=sha256,
            modified=modified,
            now=job.now,
            drivername=job.drivername,
        )
    except ParseError as exc:
        return _Loaded(name, len(data), sha256, error=exc.message)
    except Exception as exc:  # a defect met by this file alone: the others still go in
        return _Loaded(name, len(data), sha256, error=_unexpected(name, "parsing", exc))
    return _Loaded(
        name,
        len(data),
        sha256,
        rows=rows,
        entries=parsed.entries,
        warnings=tuple(parsed.warnings),
    )


def _hash_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def store_drop(
    store: SqlStore, writer: BulkWriter, loaded: _Loaded, *, now: datetime
) -> FileOutcome:
    """Write one loaded file in one transaction (or record its failure)."""
    for warning in loaded.warnings:
        log.warning("%s", warning)
    if loaded.rows is not None:
        try:
            with writer.transaction() as conn:
                take_write_lock(conn)
                if store.content_ingested(conn, loaded.sha256):
                    # another process (a second ``ingest``, the daemon) took it meanwhile
                    return FileOutcome(path=loaded.path, status="skipped")
                counts = upsert_rows(store, conn, loaded.rows, now=now)
                outcome = loaded.outcome(
                    "empty" if loaded.rows.is_empty else "new",
                    papers_new=counts.new,
                    papers_merged=counts.merged,
                )
                store.record_file(conn, loaded.record(outcome, now=now))
            return outcome
        except ParseError as exc:  # changed under us: nothing of it written, retried later
            loaded = replace(loaded, rows=None, error=exc.message)
        except StoreError as exc:
            if not _is_data_error(exc):  # the database itself: every file would fail
                raise
            loaded = replace(loaded, rows=None, error=_unexpected(loaded.path, "storing", exc))
        except Exception as exc:  # a defect met by this file alone: rolled back, recorded
            loaded = replace(loaded, rows=None, error=_unexpected(loaded.path, "storing", exc))
    log.error("%s", loaded.error)
    outcome = loaded.outcome("failed")
    with writer.transaction() as conn:
        store.record_file(conn, loaded.record(outcome, now=now))
    return outcome


def _unexpected(name: str, doing: str, exc: BaseException) -> str:
    """The error recorded for a file that met a defect (not a parse error): named, with the
    exception's type, so that it can be reported; the file is tried again once it changes
    (or with ``--retry-failed``)."""
    return f"{name}: unexpected error while {doing} it ({type(exc).__name__}: {exc}); please report"


def _is_data_error(exc: StoreError) -> bool:
    """Whether the database refused this file's rows (a value it cannot hold, a constraint),
    rather than failing itself (locked, unreachable, full): only then the others go on."""
    cause = exc.__cause__
    if isinstance(cause, sa.exc.DBAPIError):
        return isinstance(cause, sa.exc.DataError | sa.exc.IntegrityError)
    return isinstance(cause, sa.exc.StatementError)  # a value that could not be bound


PARALLEL_MIN_FILES = 4
HEAD_FILES = 8  # at most this many parsed here while the workers start (imports: ~0.5 s)


def _loaded_in_order(paths: list[Path], job: _Job, *, workers: int) -> Iterator[_Loaded]:
    """Parse in worker processes, a few files ahead of the writer, results in order.

    While the workers start, this process parses the first files itself. Falls back
    to parsing here if worker processes cannot be started or die.
    """
    if workers < 1 or len(paths) < PARALLEL_MIN_FILES:
        yield from (load_drop(path, job) for path in paths)
        return
    ahead = workers * 2 + 1  # bounded: memory stays at a few files' papers
    done = 0
    try:
        context = multiprocessing.get_context("spawn")  # no fork: the daemon has threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            head = min(HEAD_FILES, len(paths) - 1)
            pending: deque[Future[_Loaded]] = deque(
                pool.submit(load_drop, path, job) for path in paths[head : head + ahead]
            )
            queued = head + len(pending)
            while done < head and not pending[0].done():
                yield load_drop(paths[done], job)
                done += 1
            # the workers are up: the rest of the head goes to them, in front
            pending.extendleft(
                reversed([pool.submit(load_drop, path, job) for path in paths[done:head]])
            )
            while pending:
                loaded = pending.popleft().result()
                if queued < len(paths):
                    pending.append(pool.submit(load_drop, paths[queued], job))
                    queued += 1
                done += 1
                yield loaded
    except (BrokenProcessPool, OSError) as exc:
        log.warning("parsing in worker processes failed (%s); parsing here instead", exc)
        yield from (load_drop(path, job) for path in paths[done:])


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def ingest_paths(
    store: SqlStore,
    paths: Iterable[Path],
    *,
    now: datetime,
    on_file: Callable[[FileOutcome], None] | None = None,
    files: list[Path] | None = None,
    workers: int | None = None,
    index_search: bool = True,
    retry_failed: bool = False,
) -> IngestReport:
    """Ingest every drop file under ``paths`` (or the given ``files``).

    Files already ingested (by content) are skipped after two queries; a file that
    failed before and is unchanged (path, size, SHA-256) is reported failed again with
    its recorded error, without being parsed (unless ``retry_failed``); the others are
    parsed and turned into rows in ``workers`` other processes (default: one per spare
    core, none for a handful of files) while this process writes them on one bulk
    connection, one transaction per file, in order. Then (unless ``index_search`` is
    False: the caller will) the full-text index catches up, in chunks.
    """
    report = IngestReport()
    candidates = files if files is not None else list_drop_files(paths)
    # Only a file the size of one ingested before can be a known content: hash those.
    sizes = store.ingested_sizes()
    names = {path: path_text(path) for path in candidates}  # as stored and shown
    failed = {} if retry_failed else store.failed_files(list(names.values()))
    hashes = {
        path: _hash_file(path)
        for path in candidates
        if (size := _size(path)) in sizes
        or (names[path] in failed and failed[names[path]].size == size)
    }
    known = store.ingested_hashes([h for h in hashes.values() if h])
    todo: list[Path] = []
    for path in candidates:
        digest = hashes.get(path)
        before = failed.get(names[path])
        if digest in known:
            outcome = FileOutcome(path=names[path], status="skipped")
        elif digest and before is not None and before.sha256 == digest:
            log.warning("%s (unchanged since it failed: not parsed again)", before.error)
            outcome = FileOutcome(
                path=names[path],
                status="failed",
                error=before.error,
                warnings=before.warnings,
                unchanged=True,
            )
        else:
            todo.append(path)
            continue
        report.files.append(outcome)
        if on_file is not None:
            on_file(outcome)
    if workers is None:  # worker processes that parse while this one writes; 0: parse here
        workers = min((os.cpu_count() or 1) - 1, 3) if len(todo) >= PARALLEL_MIN_FILES else 0
    job = _Job(now=now, drivername=store.engine.url.drivername)
    seen: set[str] = set()
    if todo:
        with bulk_writer(store) as writer:
            for loaded in _loaded_in_order(todo, job, workers=workers):
                if loaded.sha256 and (loaded.sha256 in seen):
                    # a copy of a file earlier in this batch
                    outcome = FileOutcome(path=loaded.path, status="skipped")
                else:
                    outcome = store_drop(store, writer, loaded, now=now)
                    if loaded.rows is not None:
                        seen.add(loaded.sha256)
                report.files.append(outcome)
                if on_file is not None:
                    on_file(outcome)
    if report.papers_new and index_search:
        from digestbot.store.search import catch_up_search_index

        catch_up_search_index(store)
    return report
