"""Watch the drops folder: ingest each new file once it has stopped changing.

A file is read only when it is complete: names that say "still being written"
(``*.part``, ``*.tmp``, dot-files…, see ``digestbot.ingest.is_ignored``) are
skipped, and any other file must have a modification time at least
``settle_seconds`` old and the same size and mtime as on the previous scan (if
it was seen then). A writer that appends moves the mtime, so a file is never
read half-way; a file moved in whole (``mv`` keeps its old mtime) is read on the
first scan that sees it, one copied in after ``settle_seconds``.

The watcher remembers the (size, mtime) of every file it has handed to ingest,
so an idle folder costs one ``stat`` per file per scan, and no reads; the
content hash in ``ingested_files`` still decides whether a file is new.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from digestbot.errors import SourceError
from digestbot.ingest import IngestReport, ingest_paths, is_ignored
from digestbot.store import SqlStore

log = logging.getLogger(__name__)

Signature = tuple[int, int]  # size, mtime_ns
IngestFn = Callable[..., IngestReport]


@dataclass(frozen=True, slots=True)
class Scan:
    ready: list[Path]
    waiting: list[Path]


def list_candidates(folder: Path) -> dict[Path, Signature]:
    """Every drop-like file under ``folder`` with its size and mtime (vanished ones left out)."""
    found: dict[Path, Signature] = {}
    for path in sorted(folder.rglob("*")):
        if any(is_ignored(Path(part)) for part in path.relative_to(folder).parts):
            continue
        try:
            info = path.stat()
        except OSError:
            continue  # removed or renamed between listing and stat
        if path.is_file():
            found[path] = (info.st_size, info.st_mtime_ns)
    return found


class DropWatcher:
    """Turns successive scans of a folder into "these files are complete and new"."""

    def __init__(
        self,
        folder: Path,
        *,
        settle_seconds: float,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.settle_seconds = settle_seconds
        self.wall = wall
        self._previous: dict[Path, Signature] = {}
        self._previous_at: float | None = None  # the wall time of the previous scan
        self._handled: dict[Path, Signature] = {}
        self._told_future: set[Path] = set()

    def scan(self) -> Scan:
        """One look at the folder: which files are ready to ingest, which are still settling."""
        if not self.folder.is_dir():
            raise SourceError("the drops folder does not exist", source=str(self.folder))
        current = list_candidates(self.folder)
        now = self.wall()
        ready: list[Path] = []
        waiting: list[Path] = []
        since_previous = None if self._previous_at is None else now - self._previous_at
        for path, signature in current.items():
            if self._handled.get(path) == signature:
                continue
            age = now - signature[1] / 1e9
            before = self._previous.get(path)
            if age >= self.settle_seconds and before in (None, signature):
                ready.append(path)
            elif age < 0 and before == signature and (since_previous or 0) >= self.settle_seconds:
                # dated in the future (another machine's clock, a clock stepped back): its
                # age says nothing, so unchanged for ``settle_seconds`` of scans will do
                ready.append(path)
            else:
                waiting.append(path)
                if age < 0 and path not in self._told_future:
                    self._told_future.add(path)
                    log.warning(
                        "%s has a modification time %.0f s in the future: read once it has "
                        "not changed for %ss",
                        path,
                        -age,
                        self.settle_seconds,
                        extra={"event": "drop.future", "source": str(path)},
                    )
        self._previous = current
        self._previous_at = now
        for gone in set(self._handled) - set(current):
            del self._handled[gone]
        return Scan(ready=ready, waiting=waiting)

    def mark_handled(self, paths: list[Path]) -> None:
        for path in paths:
            signature = self._previous.get(path)
            if signature is not None:
                self._handled[path] = signature

    def ingest_ready(
        self,
        store: SqlStore,
        *,
        now: datetime,
        ingest: IngestFn = ingest_paths,
    ) -> IngestReport:
        """Scan, then ingest what is ready; a file that fails is recorded by ingest, not retried
        until it changes."""
        scan = self.scan()
        if scan.waiting:
            log.debug("waiting for %d file(s) to settle", len(scan.waiting))
        if not scan.ready:
            return IngestReport()
        report = ingest(store, (), now=now, files=scan.ready)
        self.mark_handled(scan.ready)
        for outcome in report.files:
            if outcome.status in ("new", "empty"):
                log.info(
                    "ingested %s: %d new, %d merged",
                    outcome.path,
                    outcome.papers_new,
                    outcome.papers_merged,
                    extra={"event": "drop.ingested", "source": outcome.path},
                )
        return report
