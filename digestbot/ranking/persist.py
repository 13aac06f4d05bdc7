"""The persisted lexical index: segments of ``.npy`` files next to the database.

``sync_index`` brings it up to date with the store and returns it: papers added
since (pk above the highest indexed) or changed since (``updated_at`` after the
newest indexed) go into one new segment (a changed paper's new row supersedes
its old one); nothing is rebuilt. If the index then holds fewer papers than the
store (a transaction that committed late), the missing ones are caught up. When there are
more than ``MAX_SEGMENTS`` segments, the newest ones are merged into one, so a
merge costs about the size of what it merges. Arrays are memory-mapped: a rank
reads only the postings of the profile's terms.

The index is a cache: delete its folder and the next sync rebuilds it from the
database. A manifest written last (atomically) says which segments are valid,
and a lock file serialises writers.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from digestbot.errors import StoreError
from digestbot.ranking.lexical import LexicalIndex, Segment, merge_segments
from digestbot.ranking.text import N_COLUMNS, TOKENIZER_VERSION
from digestbot.store import SqlStore
from digestbot.store.ranking import (
    count_papers,
    load_index_batch,
    load_index_documents_by_pk,
    load_pks,
)

log = logging.getLogger(__name__)

MAX_SEGMENTS = 8
MANIFEST = "manifest.json"
_ARRAYS = [f.name for f in fields(Segment)]


def default_index_dir(store: SqlStore) -> Path | None:
    """``<database file>.index`` for a SQLite file; None (configure one) otherwise."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database + ".index")
    return None


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
    arrays = {
        name: np.load(path / f"{name}.npy", mmap_mode=None if name == "cols" else "r")
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
    if data.get("version") != TOKENIZER_VERSION or data.get("n_columns") != N_COLUMNS:
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


def sync_index(store: SqlStore, directory: Path) -> LexicalIndex:
    """Bring the index in ``directory`` up to date with the store and return it."""
    try:
        with _locked(directory):
            return _sync(store, directory)
    except OSError as exc:
        raise StoreError(f"lexical index {directory}: {exc}") from exc


def _sync(store: SqlStore, directory: Path) -> LexicalIndex:
    manifest = _read_manifest(directory)
    if manifest is None:  # none yet, unreadable or outdated: start again
        for stale in directory.glob("seg-*"):
            shutil.rmtree(stale, ignore_errors=True)
    manifest = manifest or {
        "version": TOKENIZER_VERSION,
        "n_columns": N_COLUMNS,
        "segments": [],
        "watermark": None,
        "max_pk": 0,
        "next": 0,
    }
    names: list[str] = list(manifest["segments"])
    segments = [load_segment(directory / name) for name in names]
    since = datetime.fromisoformat(manifest["watermark"]) if manifest["watermark"] else None
    batch = load_index_batch(store, since=since, max_pk=int(manifest["max_pk"]))
    docs = list(batch.documents)
    index = LexicalIndex(segments)
    batch_pks = {d.pk for d in docs}
    fresh = len(batch_pks - set(index.pks[index.live].tolist())) if docs else 0
    if index.n_live + fresh != count_papers(store):
        # a paper written by a transaction older than the watermark: catch up
        known = set(index.pks[index.live].tolist()) | batch_pks
        missing = sorted(set(load_pks(store)) - known)
        docs += load_index_documents_by_pk(store, missing)
    if not docs:
        return index
    new_name = f"seg-{manifest['next']:06d}"
    save_segment(Segment.build(docs), directory / new_name)
    names.append(new_name)
    manifest["next"] += 1
    segments.append(load_segment(directory / new_name))
    if len(segments) > MAX_SEGMENTS:
        tail = len(segments) - MAX_SEGMENTS // 2
        merged_name = f"seg-{manifest['next']:06d}"
        save_segment(merge_segments(segments[tail - 1 :]), directory / merged_name)
        manifest["next"] += 1
        dropped = names[tail - 1 :]
        names = [*names[: tail - 1], merged_name]
        segments = [*segments[: tail - 1], load_segment(directory / merged_name)]
    else:
        dropped = []
    manifest["segments"] = names
    manifest["watermark"] = batch.watermark.isoformat() if batch.watermark else None
    manifest["max_pk"] = batch.max_pk
    _write_manifest(directory, manifest)
    for name in dropped:
        shutil.rmtree(directory / name, ignore_errors=True)
    for stale in directory.glob("seg-*"):
        if stale.name not in names:
            shutil.rmtree(stale, ignore_errors=True)
    log.info("lexical index %s: +%d papers, %d segments", directory, len(docs), len(names))
    return LexicalIndex(segments)


def drop_index(directory: Path) -> None:
    """Forget the index; the next sync rebuilds it."""
    if directory.exists():
        shutil.rmtree(directory)
    os.makedirs(directory, exist_ok=True)
