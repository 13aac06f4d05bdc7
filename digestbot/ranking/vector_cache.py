"""Stored vectors laid out by index row, kept per process and refreshed from what changed.

A semantic rank needs every paper's vector at its index row. Reading them all costs about
a second on 100,000 papers, so a process keeps them (one copy per database and vector key)
and then reads only the vectors written since (``store.embeddings.load_vector_changes``:
every write of vectors is numbered, and a vector carries the number of its write).

Never stale: a re-embedded paper's vector is a new write; a different database at the same
URL has another ``instance``; a deletion shows as a count that no longer matches (then
everything is read again); a new index layout (papers added, changed, merged) is rebuilt
from the vectors held, without reading them again. Memory: the vectors once per (database,
key), with room for one eighth more rows; a layout given to a rank is never written again
(new rows go past its end; a changed row is written into a copy), so ranks in several
threads each see one consistent set.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    ChangeMark,
    VectorChanges,
    load_vector_changes,
    missing_state,
)

Vectors = npt.NDArray[np.float32]
Flags = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]

MAX_ENTRIES = 4  # (database, key) pairs kept: a store's paper and title vectors, twice
SLACK = 8  # room for n_rows / SLACK more rows before the arrays are copied to grow


@dataclass(eq=False)
class _Entry:
    """One key's vectors by row (guarded by the cache's lock)."""

    mark: ChangeMark
    vectors: Vectors  # capacity x dim
    has: Flags  # capacity
    row_pk: Ints  # capacity: the paper at each row (-1: none, or a row no longer live)
    n: int  # rows laid out
    count: int  # vectors held: rows with one and orphans
    orphans: dict[int, Vectors] = field(default_factory=dict)  # vectors of papers with no row
    shown: int = 0  # rows given to ranks: never written again in these arrays


def _target(row_of: Mapping[int, int], n_rows: int) -> Ints:
    """The paper at each row (-1 where none)."""
    out = np.full(n_rows, -1, dtype=np.int64)
    if row_of:
        pks = np.fromiter(row_of.keys(), dtype=np.int64, count=len(row_of))
        rows = np.fromiter(row_of.values(), dtype=np.int64, count=len(row_of))
        out[rows] = pks
    return out


def _capacity(n_rows: int) -> int:
    return n_rows + n_rows // SLACK + 64


def _empty(mark: ChangeMark, dim: int, target: Ints) -> _Entry:
    cap = _capacity(len(target))
    row_pk = np.full(cap, -1, dtype=np.int64)
    row_pk[: len(target)] = target
    vectors = np.zeros((cap, dim), dtype=np.float32)  # calloc: the room costs no memory yet
    return _Entry(mark, vectors, np.zeros(cap, dtype=bool), row_pk, len(target), 0)


def _rows(entry: _Entry, pks: Ints) -> Ints:
    """The row of each of ``pks`` in ``entry``'s layout (-1: none)."""
    laid = entry.row_pk[: entry.n]
    rows = np.flatnonzero(laid >= 0)
    if not len(rows) or not len(pks):
        return np.full(len(pks), -1, dtype=np.int64)
    order = np.argsort(laid[rows], kind="stable")
    keys, rows = laid[rows][order], rows[order]
    at = np.minimum(np.searchsorted(keys, pks), len(keys) - 1)
    return np.where(keys[at] == pks, rows[at], -1)


def _relayout(entry: _Entry, target: Ints) -> _Entry:
    """``entry``'s vectors in a new layout (fresh arrays: ranks may hold the old ones)."""
    out = _empty(entry.mark, entry.vectors.shape[1], target)
    held = np.flatnonzero(entry.has[: entry.n])
    held_pks = entry.row_pk[held]
    new_rows = _rows(out, held_pks)
    placed = new_rows >= 0
    out.vectors[new_rows[placed]] = entry.vectors[held[placed]]
    out.has[new_rows[placed]] = True
    orphans = {
        int(pk): entry.vectors[row].copy()
        for pk, row in zip(held_pks[~placed], held[~placed], strict=True)
    }
    for pk, vector in entry.orphans.items():
        orphans[pk] = vector
    out.orphans = orphans
    out.count = entry.count
    _place_orphans(out)
    return out


def _place_orphans(entry: _Entry) -> None:
    if not entry.orphans:
        return
    pks = np.fromiter(entry.orphans.keys(), dtype=np.int64, count=len(entry.orphans))
    rows = _rows(entry, pks)
    for pk, row in zip(pks.tolist(), rows.tolist(), strict=True):
        if row >= 0:
            entry.vectors[row] = entry.orphans.pop(pk)
            entry.has[row] = True


def _fit(entry: _Entry, target: Ints) -> _Entry:
    """``entry`` laid out for ``target``: as it is when ``target`` is a prefix of its
    layout, extended in place when its layout is a prefix of ``target`` and there is room,
    else rebuilt."""
    n = len(target)
    if n <= entry.n:
        if np.array_equal(entry.row_pk[:n], target):
            return entry
    elif n <= len(entry.row_pk) and np.array_equal(entry.row_pk[: entry.n], target[: entry.n]):
        entry.row_pk[entry.n : n] = target[entry.n :]  # rows past ``shown``: no rank holds them
        entry.n = n
        _place_orphans(entry)
        return entry
    return _relayout(entry, target)


def _apply(entry: _Entry, pks: Ints, vectors: Vectors) -> None:
    """Write vectors read from the store into ``entry`` (a copy of its arrays first when a
    row a rank may hold changes)."""
    if not len(pks):
        return
    rows = _rows(entry, pks)
    held = np.zeros(len(pks), dtype=bool)
    if entry.orphans:
        held = np.asarray([pk in entry.orphans for pk in pks.tolist()], dtype=bool)
    placed = rows >= 0
    entry.count += int(np.count_nonzero(placed & ~entry.has[np.maximum(rows, 0)] & ~held))
    entry.count += int(np.count_nonzero(~placed & ~held))
    if np.any(rows[placed] < entry.shown):
        entry.vectors = entry.vectors.copy()
        entry.has = entry.has.copy()
        entry.shown = 0
    if placed.all():  # the usual case: no copy of the vectors read
        entry.vectors[rows] = vectors
        entry.has[rows] = True
    else:
        entry.vectors[rows[placed]] = vectors[placed]
        entry.has[rows[placed]] = True
    for pk in pks[placed & held].tolist():
        del entry.orphans[pk]
    for pk, vector in zip(pks[~placed].tolist(), vectors[~placed], strict=True):
        entry.orphans[pk] = vector.copy()


class VectorCache:
    """The vectors of a few (database URL, vector key) pairs by index row, least recently
    used dropped first; ``rows_read`` counts the vectors read from databases, ``counted``
    the counts of missing vectors made (``missing``)."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self.rows_read = 0
        self.counted = 0
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._missing: OrderedDict[tuple[str, tuple[str, ...]], tuple[object, dict[str, int]]]
        self._missing = OrderedDict()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._missing.clear()

    def missing(
        self,
        store: SqlStore,
        keys: Sequence[str],
        *,
        layout: Hashable,
        count: Callable[[], dict[str, int]],
    ) -> dict[str, int]:
        """``count()`` (the vectors missing per key: a pass over every paper, ~0.3 s on
        100,000), or the count this process made last for the same database and keys while
        nothing it depends on changed since: no vector written, replaced or marked current,
        no paper added (``missing_state``), and the same ``layout`` (the lexical index's
        ``fingerprint``: a paper changed in place is re-listed, which changes it). The state
        is read before counting, so a change made during the count is seen next time."""
        key = (str(store.engine.url), tuple(keys))
        state = (layout, missing_state(store))
        with self._lock:
            hit = self._missing.get(key)
            if hit is not None and hit[0] == state:
                self._missing.move_to_end(key)
                return dict(hit[1])
        counts = count()
        with self._lock:
            self.counted += 1
            self._missing[key] = (state, dict(counts))
            self._missing.move_to_end(key)
            while len(self._missing) > self.max_entries:
                self._missing.popitem(last=False)
        return counts

    def by_row(
        self, store: SqlStore, keys: Sequence[str], *, row_of: Mapping[int, int], n_rows: int
    ) -> dict[str, tuple[Vectors, Flags] | None]:
        """Per key, the vectors by row (zeros where a paper has none) and which rows have
        one, as of now (read-only arrays); None for a key with no vector stored."""
        url = str(store.engine.url)
        target = _target(row_of, n_rows)
        out: dict[str, tuple[Vectors, Flags] | None] = {}
        with self._lock:
            groups: dict[ChangeMark | None, list[str]] = {}
            for key in keys:  # keys read together share a mark: one query for them
                entry = self._entries.get((url, key))
                groups.setdefault(None if entry is None else entry.mark, []).append(key)
            for since, group in groups.items():
                changes = load_vector_changes(store, models=group, since=since)
                for key in group:
                    entry = self._refresh(
                        store, self._entries.get((url, key)), key, changes, target
                    )
                    self._keep((url, key), entry)
                    out[key] = self._show(entry, n_rows)
        return {key: out[key] for key in keys}

    def _refresh(
        self,
        store: SqlStore,
        entry: _Entry | None,
        key: str,
        changes: VectorChanges,
        target: Ints,
    ) -> _Entry:
        pks, vectors = changes.sets[key]
        self.rows_read += len(pks)
        if changes.whole:
            entry = self._whole(changes.mark, pks, vectors, target)
        elif entry is not None and (not len(pks) or vectors.shape[1] == entry.vectors.shape[1]):
            entry = _fit(entry, target)
            _apply(entry, pks, vectors)
            entry.mark = changes.mark
        else:  # another dimension: the model changed under its name
            entry = None
        if entry is None or entry.count != changes.counts[key]:  # a vector was deleted
            again = load_vector_changes(store, models=[key], since=None)
            pks, vectors = again.sets[key]
            self.rows_read += len(pks)
            entry = self._whole(again.mark, pks, vectors, target)
        return entry

    def _whole(self, mark: ChangeMark, pks: Ints, vectors: Vectors, target: Ints) -> _Entry:
        entry = _empty(mark, vectors.shape[1] if len(pks) else 0, target)
        _apply(entry, pks, vectors)
        return entry

    def _keep(self, key: tuple[str, str], entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    @staticmethod
    def _show(entry: _Entry, n_rows: int) -> tuple[Vectors, Flags] | None:
        if not entry.count:
            return None
        entry.shown = max(entry.shown, n_rows)
        vectors, has = entry.vectors[:n_rows], entry.has[:n_rows]
        vectors.flags.writeable = False
        has.flags.writeable = False
        return vectors, has


VECTORS = VectorCache()  # the process's: a daemon or a Slack server reads each vector once
