"""Ingest drop files: list, hash, parse, store. One transaction per file.

A file whose content (SHA-256) was ingested before is skipped, whatever its
name. A file that cannot be read or parsed is recorded as failed with its
error, and the others still go in.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digestbot.errors import ParseError, SourceError
from digestbot.sources.drops import decode_drop, parse_drop
from digestbot.store import FileRecord, SqlStore

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".swp")


@dataclass(frozen=True, slots=True)
class FileOutcome:
    path: str
    status: str  # new | empty | skipped | failed
    entries: int = 0
    papers_new: int = 0
    papers_merged: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()


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
                }
                for f in self.files
            ],
        }


def is_ignored(path: Path) -> bool:
    """Dot-files and files still being written (``*.part``, ``*.tmp``…) are not drops."""
    return path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES)


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
            raise SourceError("no such file or folder", source=str(path))
    return found


def ingest_file(store: SqlStore, path: Path, *, now: datetime) -> FileOutcome:
    name = str(path)
    try:
        data = path.read_bytes()
        modified = datetime.fromtimestamp(path.stat().st_mtime)
    except OSError as exc:
        return _failed(store, name, 0, "", f"cannot read: {exc.strerror or exc}", now=now)
    sha256 = hashlib.sha256(data).hexdigest()
    if store.file_ingested(sha256) is not None:
        return FileOutcome(path=name, status="skipped")
    try:
        parsed = parse_drop(decode_drop(data, name=name), name=name, modified=modified)
    except ParseError as exc:
        return _failed(store, name, len(data), sha256, exc.message, now=now)
    for warning in parsed.warnings:
        log.warning("%s", warning)
    with store.transaction() as conn:
        counts, pks = store.upsert_papers(conn, parsed.papers, now=now)
        store.record_sources(
            conn,
            [(pks[i], p.source) for i, p in enumerate(parsed.papers) if p.source is not None],
            now=now,
        )
        status = "new" if parsed.papers else "empty"
        store.record_file(
            conn,
            FileRecord(
                path=name,
                size=len(data),
                sha256=sha256,
                ingested_at=now,
                status="ok" if parsed.papers else "empty",
                error=None,
                entries=parsed.entries,
                papers_new=counts.new,
                papers_merged=counts.merged,
                warnings=tuple(parsed.warnings),
            ),
        )
    return FileOutcome(
        path=name,
        status=status,
        entries=parsed.entries,
        papers_new=counts.new,
        papers_merged=counts.merged,
        warnings=tuple(parsed.warnings),
    )


def _failed(
    store: SqlStore, name: str, size: int, sha256: str, error: str, *, now: datetime
) -> FileOutcome:
    log.error("%s", error)
    with store.transaction() as conn:
        store.record_file(
            conn,
            FileRecord(
                path=name,
                size=size,
                sha256=sha256,
                ingested_at=now,
                status="failed",
                error=error,
                entries=0,
                papers_new=0,
                papers_merged=0,
            ),
        )
    return FileOutcome(path=name, status="failed", error=error)


def ingest_paths(
    store: SqlStore,
    paths: Iterable[Path],
    *,
    now: datetime,
    on_file: Callable[[FileOutcome], None] | None = None,
    files: list[Path] | None = None,
) -> IngestReport:
    """Ingest every drop file under ``paths`` (or the given ``files``)."""
    report = IngestReport()
    for path in files if files is not None else list_drop_files(paths):
        outcome = ingest_file(store, path, now=now)
        report.files.append(outcome)
        if on_file is not None:
            on_file(outcome)
    return report
