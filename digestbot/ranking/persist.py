"""The persisted lexical index: segments of ``.npy`` files next to the database.

``sync_index`` brings it up to date with the store and returns it: papers added
since (pk above the highest indexed) or changed since (``updated_at`` after the
newest indexed) go into new segments of at most ``SEGMENT_ROWS`` papers each, read
and written one at a time, so a 100,000-paper bulk ingest never holds more than
one segment's worth in memory (a changed paper's new row supersedes its old one);
nothing is rebuilt. If the index then holds fewer papers than the store (a
transaction that committed late), the missing ones are caught up. Small segments
(daily ingests) are merged once there are more than ``MAX_SMALL`` of them; large
ones are left alone, so a merge costs about the size of what it merges. Segments
also keep each paper's id and title, so a full listing needs no database read.
Arrays are memory-mapped: a rank reads only the postings of the profile's terms.

The index is a cache: delete its folder and the next sync rebuilds it from the
database. A manifest written last (atomically) says which segments are valid,
and a lock file serialises writers. It also names the database it was built from
(the ``embedding_changes`` instance id) and the id of its highest pk: an index of
another database at the same URL, or of a newer copy than the one restored (a
paper it holds gone, or another at its highest pk), is rebuilt, not trusted.

Where it lives (``default_index_dir``): beside a SQLite file; for a server database
(PostgreSQL) in the user's cache folder, one per database URL, so that each machine
sharing one server keeps its own index and catches it up from the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.engine import URL

from digestbot.errors import StoreError
from digestbot.ranking.lexical import Document, LexicalIndex, Segment, live_masks, merge_segments
from digestbot.ranking.text import N_COLUMNS, TOKENIZER_VERSION
from digestbot.store import SqlStore
from digestbot.store.ranking import (
    count_papers,
    database_instance,
    id_at_pk,
    ids_at_pk,
    load_index_batch,
    load_index_documents_by_pk,
    load_pks,
)

log = logging.getLogger(__name__)

SEGMENT_ROWS = 10_000  # papers per segment built at once: bounds the memory of a bulk build
MAX_SMALL = 6  # small segments (daily ingests) kept before the smallest are merged
LAYOUT = 2  # the segment files' layout (2: ids and titles kept); another is rebuilt
MANIFEST = "manifest.json"
_ARRAYS = [f.name for f in fields(Segment)]


def default_index_dir(store: SqlStore, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the store's index lives when ``ranking.index_dir`` is not set
    (``index_dir_for_url``). A server database's cache folder that cannot be made or
    written (a service user without a home) gives None, with a warning: each rank then
    builds the index in memory, as before there was a default."""
    found = index_dir_for_url(store.engine.url, environ)
    if found is None or store.engine.url.get_backend_name() == "sqlite":
        return found
    try:
        found.parent.mkdir(parents=True, exist_ok=True)
        usable = os.access(found.parent, os.W_OK | os.X_OK)
    except OSError:
        usable = False
    if not usable:
        log.warning(
            "ranking index folder %s is not writable: set ranking.index_dir (the index is "
            "built in memory for every rank meanwhile)",
            found.parent,
        )
        return None
    return found


def index_dir_for_url(url: URL, environ: Mapping[str, str] = os.environ) -> Path | None:
    """``<database file>.index`` for a SQLite file; None for an in-memory database (the
    index is then built per rank); for a server database, ``<cache>/digestbot/<backend>-
    <hash>.index`` where ``<cache>`` is ``$XDG_CACHE_HOME`` (default ``~/.cache``) and
    ``<hash>`` is taken from the URL without its password or driver (a new password, or
    psycopg for psycopg2, keeps the index).
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            return Path(url.database + ".index")
        return None
    if not url.database:
        return None
    query = sorted((k, str(v)) for k, v in url.query.items())
    key = json.dumps([backend, url.username, url.host, url.port, url.database, query])
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    cache = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")) / ".cache")
    return Path(cache).expanduser() / "digestbot" / f"{backend}-{digest}.index"


def database_signature(store: SqlStore, *, settle_ns: int = 2_000_000_000) -> list[int] | None:
    """Size and modification time of a SQLite database's files, or None (not a file,
    or written in the last ``settle_ns``: a coarse clock could hide a second write).

    Every committed write changes the database or its write-ahead log, so an equal
    signature means an unchanged store: ``sync_index`` then runs no query at all.
    """
    url = store.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    out: list[int] = []
    newest = 0
    for path in (url.database, url.database + "-wal"):
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            stat = None
        if stat is None or stat.st_size == 0:  # an empty log (opening creates one) holds nothing
            out += [0, 0]
            continue
        out += [stat.st_size, stat.st_mtime_ns]
        newest = max(newest, stat.st_mtime_ns)
    if time.time_ns() - newest < settle_ns:
        return None
    return out


def save_segment(segment: Segment, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(tmp / f"{name}.npy", getattr(segment, name), allow_pickle=False)
    if path.exists():
        shutil.rmtree(path)
    tmp.replace(path)


def load_segment(path: Path) -> Segment:
    # the term directory is searched for every query term: keep it in memory
    # the rest stay on disk, mapped; seen as plain arrays (a ``np.memmap`` slice costs
    # Python-level bookkeeping, thousands of times per rank)
    arrays = {
        name: np.load(path / f"{name}.npy", mmap_mode=None if name == "cols" else "r").view(
            np.ndarray
        )
        for name in _ARRAYS
    }
    return Segment(**arrays)


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_text("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("index manifest %s unreadable (%s): rebuilding", directory, exc)
        return None
    if (
        data.get("version") != TOKENIZER_VERSION
        or data.get("n_columns") != N_COLUMNS
        or data.get("layout") != LAYOUT
    ):
        log.info("index %s was built by another analyser version: rebuilding", directory)
        return None
    return dict(data)


def _write_manifest(directory: Path, data: dict[str, Any]) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data), "utf-8")
    tmp.replace(directory / MANIFEST)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sync_index(
    store: SqlStore, directory: Path, *, segment_rows: int = SEGMENT_ROWS
) -> LexicalIndex:
    """Bring the index in ``directory`` up to date with the store and return it."""
    try:
        with _locked(directory):
            return _sync(store, directory, segment_rows=segment_rows)
    except OSError as exc:
        raise StoreError(f"lexical index {directory}: {exc}") from exc


def _fresh_manifest() -> dict[str, Any]:
    return {
        "version": TOKENIZER_VERSION,
        "n_columns": N_COLUMNS,
        "layout": LAYOUT,
        "segments": [],
        "watermark": None,
        "max_pk": 0,
        "max_id": None,  # the id of the paper at ``max_pk``
        "instance": None,  # the database's ``embedding_changes`` instance id
        "next": 0,
    }


def _foreign(store: SqlStore, manifest: dict[str, Any], instance: str | None) -> str | None:
    """Why the index in ``manifest`` is not this database's (None when it is).

    Another database at the same URL has another instance id; a restored older copy has
    the same one, but not the paper the index holds at its highest pk (gone, or another
    paper under that pk), or fewer papers than the index (checked in ``_sync``). The
    paper at that pk may have changed its id since (a ``t-…`` id became an arXiv id): its
    ``tid`` keeps the old one.
    """
    held = manifest.get("instance")
    if held is not None and instance is not None and held != instance:
        return f"built from another database (instance {held}, now {instance})"
    max_pk, max_id = int(manifest["max_pk"]), manifest.get("max_id")
    if max_pk and max_id is not None and max_id not in ids_at_pk(store, max_pk):
        return f"its newest paper (pk {max_pk}, {max_id}) is not in the database"
    return None


def _sync(store: SqlStore, directory: Path, *, segment_rows: int) -> LexicalIndex:
    manifest = _read_manifest(directory)
    signature = database_signature(store)  # taken before reading: a later write changes it
    if (
        manifest is not None and signature is not None and manifest.get("signature") == signature
    ):  # the database files are as they were when the index was last synced
        return LexicalIndex([load_segment(directory / name) for name in manifest["segments"]])
    instance = database_instance(store)
    if manifest is not None:
        reason = _foreign(store, manifest, instance)
        if reason is not None:
            log.warning("lexical index %s %s: rebuilding", directory, reason)
            manifest = None
    if manifest is None:  # none yet, unreadable, outdated or foreign: start again
        for stale in directory.glob("seg-*"):
            shutil.rmtree(stale, ignore_errors=True)
        manifest = _fresh_manifest()
    names: list[str] = list(manifest["segments"])
    segments = [load_segment(directory / name) for name in names]
    index = LexicalIndex(segments)
    since = datetime.fromisoformat(manifest["watermark"]) if manifest["watermark"] else None
    max_pk = int(manifest["max_pk"])
    max_id = manifest.get("max_id")
    if max_id is None and max_pk:  # an index of an earlier version: learn it
        max_id = id_at_pk(store, max_pk)
    known: set[int] | None = None  # live pks, computed only when something changed
    watermark, new_max, fresh, after = since, max_pk, 0, 0
    new_names: list[str] = []
    added = 0

    def write(docs: list[Document]) -> None:  # one batch: memory stays bounded
        nonlocal added
        name = f"seg-{manifest['next']:06d}"
        manifest["next"] += 1
        save_segment(Segment.build(docs), directory / name)
        new_names.append(name)
        added += len(docs)

    while True:  # one segment per ``segment_rows`` papers: memory stays bounded
        batch = load_index_batch(store, since=since, max_pk=max_pk, after=after, limit=segment_rows)
        if not batch.documents:
            break
        if known is None:
            known = set(index.pks[index.live].tolist())
        pks = [d.pk for d in batch.documents]
        fresh += len(set(pks) - known)
        known.update(pks)
        write(batch.documents)
        after = pks[-1]
        # the paper at the highest pk, new or changed (its id may have: an arXiv id gained)
        newest = next((d.id for d in batch.documents if d.pk == batch.max_pk), None)
        if batch.max_pk > new_max or newest is not None:
            new_max = batch.max_pk
            max_id = newest if newest is not None else max_id
        if batch.watermark is not None and (watermark is None or batch.watermark > watermark):
            watermark = batch.watermark
        if len(batch.documents) < segment_rows:
            break
    total = count_papers(store)
    if index.n_live + fresh > total and names:  # papers it holds are gone: an older copy
        log.warning("lexical index %s holds papers the database has not: rebuilding", directory)
        return _restart(store, directory, segment_rows=segment_rows)
    if index.n_live + fresh != total:
        # a paper written by a transaction older than the watermark: catch up
        if known is None:
            known = set(index.pks[index.live].tolist())
        missing = sorted(set(load_pks(store)) - known)
        for start in range(0, len(missing), segment_rows):
            write(load_index_documents_by_pk(store, missing[start : start + segment_rows]))
    names += new_names
    segments += [load_segment(directory / name) for name in new_names]
    if not added:
        marks = {"signature": signature, "instance": instance, "max_id": max_id}
        if manifest["segments"] and any(manifest.get(k) != v for k, v in marks.items()):
            manifest.update(marks)  # an index of an earlier version learns its database
            _write_manifest(directory, manifest)
        return index
    manifest["signature"] = signature
    manifest["instance"] = instance
    manifest["max_id"] = max_id
    names, segments, dropped = _compact(directory, manifest, names, segments, segment_rows)
    manifest["segments"] = names
    manifest["watermark"] = watermark.isoformat() if watermark else None
    manifest["max_pk"] = new_max
    _write_manifest(directory, manifest)
    for name in dropped:
        shutil.rmtree(directory / name, ignore_errors=True)
    for stale in directory.glob("seg-*"):
        if stale.name not in names:
            shutil.rmtree(stale, ignore_errors=True)
    log.info("lexical index %s: +%d papers, %d segments", directory, added, len(names))
    return LexicalIndex(segments)


def _restart(store: SqlStore, directory: Path, *, segment_rows: int) -> LexicalIndex:
    """Forget the index in ``directory`` and build it again (the caller holds the lock)."""
    (directory / MANIFEST).unlink(missing_ok=True)
    return _sync(store, directory, segment_rows=segment_rows)


def _compact(
    directory: Path,
    manifest: dict[str, Any],
    names: list[str],
    segments: list[Segment],
    segment_rows: int,
) -> tuple[list[str], list[Segment], list[str]]:
    """Merge small segments once there are more than ``MAX_SMALL`` of them.

    A segment is small when it holds under ``SEGMENT_ROWS / 2`` live papers; the
    smallest are merged into one of at most ``SEGMENT_ROWS`` papers (only live rows
    are kept, so the merged segment may sit anywhere in the list). Large segments
    are never rewritten: a merge costs about the size of what it merges.
    """
    live = live_masks(segments)
    sizes = [int(mask.sum()) for mask in live]
    small = sorted(
        (i for i, size in enumerate(sizes) if size < segment_rows // 2), key=lambda i: sizes[i]
    )
    if len(small) <= MAX_SMALL:
        return names, segments, []
    chosen: list[int] = []
    total = 0
    for i in small:
        if len(chosen) >= 2 and total + sizes[i] > segment_rows:
            break
        chosen.append(i)
        total += sizes[i]
    chosen.sort()
    merged_name = f"seg-{manifest['next']:06d}"
    manifest["next"] += 1
    save_segment(
        merge_segments([segments[i] for i in chosen], [live[i] for i in chosen]),
        directory / merged_name,
    )
    merged = load_segment(directory / merged_name)
    keep = [i for i in range(len(segments)) if i not in chosen]
    return (
        [*(names[i] for i in keep), merged_name],
        [*(segments[i] for i in keep), merged],
        [names[i] for i in chosen],
    )


def drop_index(directory: Path) -> None:
    """Forget the index; the next sync rebuilds it."""
    if directory.exists():
        shutil.rmtree(directory)
    os.makedirs(directory, exist_ok=True)
