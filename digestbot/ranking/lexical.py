"""BM25F over title and abstract, as column-major postings (no per-paper loops in scoring).

A ``Segment`` holds the postings of a batch of papers: for every hashed term
column, the rows holding it and the field-weighted term frequency (title words
count ``TITLE_WEIGHT`` times). An index is a list of segments; a newer segment
supersedes a paper's row in an older one. Scoring a term gathers its postings
from every segment: the cost is the number of matches, not the number of papers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt

from digestbot.ranking.labels import pack, unpack
from digestbot.ranking.text import batch_columns, column, terms, words

TITLE_WEIGHT = 2.5
K1 = 1.2
B = 0.75

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_CHUNK = 1000  # papers analysed at once by ``Segment.build`` (bounds its memory)


@dataclass(frozen=True, slots=True)
class Document:
    """What the index needs of a paper."""

    pk: int
    title: str
    abstract: str
    upvotes: int = 0
    published: date | None = None
    id: str = ""  # the paper id, kept in the segment for listings


def weighted_terms(title: str, abstract: str) -> tuple[dict[int, float], float]:
    """Hashed term columns -> field-weighted frequency, and the weighted length.

    Remembered for the last few hundred papers (top hits and liked papers are analysed
    more than once per rank); do not change the returned dict.
    """
    key = (title, abstract)
    hit = _RECENT.get(key)
    if hit is None:
        if len(_RECENT) >= 512:
            _RECENT.clear()
        hit = _RECENT[key] = _weighted_terms(title, abstract)
    return hit


_RECENT: dict[tuple[str, str], tuple[dict[int, float], float]] = {}


def _weighted_terms(title: str, abstract: str) -> tuple[dict[int, float], float]:
    title_words = words(title)
    abstract_words = words(abstract)
    counts: dict[int, float] = {}
    get = counts.get
    for weight, analysed in ((TITLE_WEIGHT, title_words), (1.0, abstract_words)):
        for term in terms(analysed):
            col = column(term)
            counts[col] = get(col, 0.0) + weight
    return counts, TITLE_WEIGHT * len(title_words[0]) + len(abstract_words[0])


@dataclass(frozen=True)
class Segment:
    cols: npt.NDArray[np.int32]  # sorted distinct term columns
    ptr: Ints  # postings of cols[i] are rows[ptr[i]:ptr[i+1]]
    rows: npt.NDArray[np.int32]
    tf: npt.NDArray[np.float32]
    pks: Ints  # row -> papers.pk
    doc_len: npt.NDArray[np.float32]
    upvotes: npt.NDArray[np.int32]
    published: npt.NDArray[np.int32]  # date ordinal, 0 when unknown
    labels: npt.NDArray[np.uint8]  # ids and titles, packed (``digestbot.ranking.labels``)
    label_ptr: Ints  # row i: id = strings[2i], title = strings[2i + 1]

    @property
    def size(self) -> int:
        return len(self.pks)

    @classmethod
    def build(cls, docs: Sequence[Document]) -> Segment:
        # a chunk of papers at a time, analysed together (``batch_columns``) and its
        # postings counted with one sort of (column, row, field) keys: no dict per paper
        row_parts: list[npt.NDArray[np.int32]] = []
        col_parts: list[npt.NDArray[np.int32]] = []
        tf_parts: list[npt.NDArray[np.float32]] = []
        lengths = np.zeros(len(docs), dtype=np.float32)
        for start in range(0, len(docs), _CHUNK):
            chunk = docs[start : start + _CHUNK]
            owner, term, n_words = batch_columns([s for d in chunk for s in (d.title, d.abstract)])
            lengths[start : start + len(chunk)] = TITLE_WEIGHT * n_words[0::2] + n_words[1::2]
            # texts alternate title, abstract: the low bit is 1 for a title term
            pair, tf = _count((term * _CHUNK + (owner >> 1)) * 2 + (1 - (owner & 1)))
            row_parts.append((pair % _CHUNK + start).astype(np.int32))
            col_parts.append((pair // _CHUNK).astype(np.int32))
            tf_parts.append(tf)
        rows = np.concatenate(row_parts) if row_parts else _NO_ROWS
        del row_parts
        cols = np.concatenate(col_parts) if col_parts else _NO_ROWS
        del col_parts
        # by column, then row: each chunk is, so (column, position) keys are sorted runs,
        # which a stable sort (timsort) merges
        order = cols.astype(np.int64)
        order <<= 32
        order |= np.arange(len(cols))
        order.sort(kind="stable")
        order &= 0xFFFFFFFF
        labels, label_ptr = pack([s for d in docs for s in (d.id, d.title)])
        return cls.from_postings(
            rows=rows[order],
            cols=cols[order],
            tf=np.concatenate(tf_parts)[order] if tf_parts else _NO_TF,
            pks=np.asarray([d.pk for d in docs], dtype=np.int64),
            doc_len=lengths,
            upvotes=np.asarray([d.upvotes for d in docs], dtype=np.int32),
            published=np.asarray(
                [d.published.toordinal() if d.published else 0 for d in docs], dtype=np.int32
            ),
            labels=labels,
            label_ptr=label_ptr,
            by_column=True,
        )

    @classmethod
    def from_postings(
        cls,
        *,
        rows: npt.NDArray[np.int32],
        cols: npt.NDArray[np.int32],
        tf: npt.NDArray[np.float32],
        pks: Ints,
        doc_len: npt.NDArray[np.float32],
        upvotes: npt.NDArray[np.int32],
        published: npt.NDArray[np.int32],
        labels: npt.NDArray[np.uint8],
        label_ptr: Ints,
        by_column: bool = False,
    ) -> Segment:
        # by column, then row (unless already so)
        if not by_column:
            order = np.lexsort((rows, cols))
            cols, rows, tf = cols[order], rows[order], tf[order]
        starts = np.flatnonzero(np.diff(cols, prepend=cols[:1] - 1)) if len(cols) else _NO_INTS
        distinct = cols[starts]
        ptr = np.append(starts, len(cols)).astype(np.int64)
        return cls(
            cols=distinct.astype(np.int32),
            ptr=ptr,
            rows=rows.astype(np.int32),
            tf=tf.astype(np.float32),
            pks=pks,
            doc_len=doc_len,
            upvotes=upvotes,
            published=published,
            labels=labels,
            label_ptr=label_ptr,
        )

    def strings(self) -> list[str]:
        """Ids and titles, interleaved (see ``label_ptr``)."""
        return unpack(self.labels, self.label_ptr)

    def postings(self, col: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float32]]:
        i = int(np.searchsorted(self.cols, np.int32(col)))  # same dtype: no array copy
        if i >= len(self.cols) or self.cols[i] != col:
            return _NO_ROWS, _NO_TF
        return self.rows[self.ptr[i] : self.ptr[i + 1]], self.tf[self.ptr[i] : self.ptr[i + 1]]

    def expanded(self) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """(rows, cols) of every posting, for merging segments."""
        counts = np.diff(self.ptr)
        return self.rows, np.repeat(self.cols, counts)


def _count(keys: Ints) -> tuple[Ints, npt.NDArray[np.float32]]:
    """Sorted distinct ``key >> 1`` and, for each, its field-weighted count (low bit 1:
    a title occurrence). Sorts ``keys`` in place: a segment has millions of them."""
    if not len(keys):
        return keys, _NO_TF
    keys.sort()
    titles = np.cumsum(keys & 1, dtype=np.int32)  # title occurrences up to here
    keys >>= 1
    first = np.flatnonzero(np.diff(keys, prepend=-1))
    last = np.append(first[1:], len(keys)) - 1
    in_title = titles[last] - np.where(first > 0, titles[first - 1], 0)
    elsewhere = last - first + 1 - in_title
    return keys[first], (TITLE_WEIGHT * in_title + elsewhere).astype(np.float32)


_NO_ROWS = np.zeros(0, dtype=np.int32)
_NO_TF = np.zeros(0, dtype=np.float32)
_NO_INTS = np.zeros(0, dtype=np.int64)


def merge_segments(
    segments: Sequence[Segment], live: Sequence[npt.NDArray[np.bool_]] | None = None
) -> Segment:
    """One segment with the live rows of many (a later segment's row wins).

    ``live``: which rows of each segment to keep (default: those no later one of
    ``segments`` supersedes); pass the masks of the whole index to merge segments
    that are not adjacent.
    """
    live = live_masks(segments) if live is None else live
    row_parts, col_parts, tf_parts = [], [], []
    keep_pks, keep_len, keep_up, keep_pub = [], [], [], []
    keep_strings: list[str] = []
    offset = 0
    for seg, mask in zip(segments, live, strict=True):
        new_row = np.full(seg.size, -1, dtype=np.int64)
        new_row[mask] = np.arange(offset, offset + int(mask.sum()))
        rows, cols = seg.expanded()
        mapped = new_row[rows]
        keep = mapped >= 0
        row_parts.append(mapped[keep].astype(np.int32))
        col_parts.append(cols[keep])
        tf_parts.append(seg.tf[keep])
        keep_pks.append(seg.pks[mask])
        keep_len.append(seg.doc_len[mask])
        keep_up.append(seg.upvotes[mask])
        keep_pub.append(seg.published[mask])
        both = np.repeat(mask, 2).tolist()  # a row's id and title
        keep_strings += [s for s, k in zip(seg.strings(), both, strict=True) if k]
        offset += int(mask.sum())
    labels, label_ptr = pack(keep_strings)
    return Segment.from_postings(
        rows=np.concatenate(row_parts) if row_parts else _NO_ROWS,
        cols=np.concatenate(col_parts) if col_parts else _NO_ROWS,
        tf=np.concatenate(tf_parts) if tf_parts else _NO_TF,
        pks=np.concatenate(keep_pks) if keep_pks else np.zeros(0, dtype=np.int64),
        doc_len=np.concatenate(keep_len) if keep_len else np.zeros(0, dtype=np.float32),
        upvotes=np.concatenate(keep_up) if keep_up else np.zeros(0, dtype=np.int32),
        published=np.concatenate(keep_pub) if keep_pub else np.zeros(0, dtype=np.int32),
        labels=labels,
        label_ptr=label_ptr,
    )


def live_masks(segments: Sequence[Segment]) -> list[npt.NDArray[np.bool_]]:
    """Per segment, the rows not superseded by a later segment (same pk)."""
    if _disjoint(segments):  # the usual case: nothing superseded, nothing to search
        return [np.ones(seg.size, dtype=bool) for seg in segments]
    masks: list[npt.NDArray[np.bool_]] = []
    later: Ints = np.zeros(0, dtype=np.int64)
    for seg in reversed(segments):
        masks.append(~np.isin(seg.pks, later))
        later = np.concatenate([later, seg.pks])
    return masks[::-1]


def _disjoint(segments: Sequence[Segment]) -> bool:
    """Whether no two segments' pk ranges overlap (then no pk is in two segments)."""
    ranges = sorted((int(seg.pks.min()), int(seg.pks.max())) for seg in segments if seg.size)
    return all(prev[1] < nxt[0] for prev, nxt in pairwise(ranges))


class LexicalIndex:
    """Segments seen as one: global row numbers, live rows, BM25 per term column."""

    def __init__(self, segments: Sequence[Segment]) -> None:
        self.segments = list(segments)
        self.offsets = np.cumsum([0] + [s.size for s in self.segments]).astype(np.int64)
        self.n_rows = int(self.offsets[-1])
        masks = live_masks(self.segments)
        self.live = np.concatenate(masks) if masks else np.zeros(0, dtype=bool)
        self.n_live = int(self.live.sum())

        def cat(name: str, dtype: type) -> npt.NDArray[Any]:
            parts = [getattr(s, name) for s in self.segments]
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        self.pks: Ints = cat("pks", np.int64)
        self.doc_len: Floats = cat("doc_len", np.float64)
        self.upvotes: Ints = cat("upvotes", np.int64)
        self.published: Ints = cat("published", np.int64)
        live_len = self.doc_len[self.live]
        avg = float(live_len.mean()) if len(live_len) else 1.0
        self.norm: Floats = K1 * (1.0 - B + B * self.doc_len / (avg or 1.0))
        self._cache: dict[int, tuple[Ints, Floats, float]] = {}
        self._df_cache: dict[int, float] = {}
        self._row_of: dict[int, int] | None = None
        self.memo: dict[object, Any] = {}  # per-index derived values (e.g. priors)

    @classmethod
    def build(cls, docs: Sequence[Document]) -> LexicalIndex:
        return cls([Segment.build(docs)])

    def labels(self) -> tuple[list[str], list[str]]:
        """(ids, titles) of every row, dead ones included (decoded once per index)."""
        hit = self.memo.get("labels")
        if hit is None:
            strings = [s for seg in self.segments for s in seg.strings()]
            hit = (strings[0::2], strings[1::2])
            self.memo["labels"] = hit
        return hit

    def rows_of(self, pks: Sequence[int]) -> Ints:
        """The live row of each pk, -1 for one not indexed (no dict of every pk)."""
        if not len(pks):
            return np.zeros(0, dtype=np.int64)
        hit = self.memo.get("pk_order")
        if hit is None:
            rows = np.flatnonzero(self.live)
            order = np.argsort(self.pks[rows], kind="stable")
            hit = self.memo["pk_order"] = (self.pks[rows][order], rows[order])
        sorted_pks, sorted_rows = hit
        wanted = np.asarray(pks, dtype=np.int64)
        if not len(sorted_pks):
            return np.full(len(wanted), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(sorted_pks, wanted), len(sorted_pks) - 1)
        return np.where(sorted_pks[pos] == wanted, sorted_rows[pos], -1).astype(np.int64)

    def fingerprint(self) -> tuple[int, int]:
        """Equal for two indexes only when they list the same papers, as indexed, at the same
        rows (a paper changed in place is re-listed at a new row by a persisted index; a
        built one differs in its upvotes or text length): the rows and a CRC-32 of the pks,
        live rows, upvotes and text lengths. Computed once per index."""
        hit = self.memo.get("fingerprint")
        if hit is None:
            crc = 0
            for part in (self.pks, self.live, self.upvotes, self.doc_len):
                crc = zlib.crc32(np.ascontiguousarray(part).tobytes(), crc)
            hit = self.memo["fingerprint"] = (self.n_rows, crc)
        return hit

    def row_of_pk(self) -> dict[int, int]:
        """pk -> live row (computed once per index)."""
        if self._row_of is None:
            rows = np.flatnonzero(self.live)
            self._row_of = dict(zip(self.pks[rows].tolist(), rows.tolist(), strict=True))
        return self._row_of

    def idf(self, df: float) -> float:
        n = max(self.n_live, 1)
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def bm25(self, col: int) -> tuple[Ints, Floats, float]:
        """(live rows, BM25 weight, idf) of one term column."""
        hit = self._cache.get(col)
        if hit is None:
            self.prefetch([col])
            hit = self._cache[col]
        return hit

    def prefetch(self, cols: Sequence[int]) -> None:
        """Compute and cache ``bm25`` of many term columns at once: per segment, one
        search for all of them and one gather of their postings."""
        missing = sorted({int(c) for c in cols if c not in self._cache})
        if not missing:
            return
        want = np.asarray(missing, dtype=np.int32)
        row_parts: list[Ints] = []
        tf_parts: list[Floats] = []
        block_term: list[Ints] = []  # a block: one term's postings in one segment
        block_len: list[Ints] = []
        for seg, offset in zip(self.segments, self.offsets, strict=False):
            if not len(seg.cols):
                continue
            pos = np.minimum(np.searchsorted(seg.cols, want), len(seg.cols) - 1)
            found = np.flatnonzero(seg.cols[pos] == want)
            if not len(found):
                continue
            starts = seg.ptr[pos[found]]
            lengths = seg.ptr[pos[found] + 1] - starts
            # the postings of every found term, back to back: ranges start..start+length
            at = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
            at += np.arange(len(at))
            row_parts.append(seg.rows[at].astype(np.int64) + offset)
            tf_parts.append(seg.tf[at].astype(np.float64))
            block_term.append(found)
            block_len.append(lengths)
        if row_parts:
            # blocks come segment by segment; move them to term by term (segment order
            # kept within a term) with one scatter, not a sort of every posting
            terms_of = np.concatenate(block_term)
            lengths = np.concatenate(block_len)
            src_start = np.cumsum(lengths) - lengths
            by_term = np.argsort(terms_of, kind="stable")
            dst_start = np.empty_like(src_start)
            dst_start[by_term] = np.cumsum(lengths[by_term]) - lengths[by_term]
            dest = np.repeat(dst_start - src_start, lengths)
            dest += np.arange(len(dest))
            rows = np.empty(len(dest), dtype=np.int64)
            tf = np.empty(len(dest))
            term = np.empty(len(dest), dtype=np.int64)
            rows[dest] = np.concatenate(row_parts)
            tf[dest] = np.concatenate(tf_parts)
            term[dest] = np.repeat(terms_of, lengths)
            keep = self.live[rows]
            if not keep.all():
                rows, tf, term = rows[keep], tf[keep], term[keep]
            bounds = np.searchsorted(term, np.arange(len(missing) + 1))
        else:
            rows, tf = np.zeros(0, dtype=np.int64), np.zeros(0)
            bounds = np.zeros(len(missing) + 1, dtype=np.int64)
        for j, col in enumerate(missing):
            a, b = int(bounds[j]), int(bounds[j + 1])
            if a == b:
                self._cache[col] = (np.zeros(0, dtype=np.int64), np.zeros(0), 0.0)
                continue
            idf = self.idf(b - a)
            t = tf[a:b]
            r = rows[a:b]
            self._cache[col] = (r, idf * t * (K1 + 1.0) / (t + self.norm[r]), idf)

    def weighted_sum(self, cols: Sequence[int], weights: Sequence[float]) -> Floats:
        """Per row: sum of weight x BM25 over the term columns (one pass, one array)."""
        row_parts: list[Ints] = []
        val_parts: list[Floats] = []
        self.prefetch(cols)
        for col, weight in zip(cols, weights, strict=True):
            rows, bm25, _ = self._cache[col]
            if len(rows):
                row_parts.append(rows)
                val_parts.append(bm25 * weight if weight != 1.0 else bm25)
        if not row_parts:
            return np.zeros(self.n_rows)
        return np.bincount(
            np.concatenate(row_parts), weights=np.concatenate(val_parts), minlength=self.n_rows
        ).astype(np.float64, copy=False)  # float64 already: no copy

    def document_frequency(self, cols: npt.NDArray[np.int64]) -> Floats:
        """How many rows hold each column (superseded rows included: a close estimate)."""
        known = self._df_cache
        wanted_list = np.asarray(cols, dtype=np.int64).tolist()
        missing = sorted(set(wanted_list).difference(known))
        if missing:
            ask = np.asarray(missing, dtype=np.int64)
            df = np.zeros(len(ask))
            for seg in self.segments:
                if not len(seg.cols):
                    continue
                pos = np.searchsorted(seg.cols, ask.astype(np.int32))
                pos_c = np.minimum(pos, len(seg.cols) - 1)
                found = seg.cols[pos_c] == ask
                df[found] += (seg.ptr[pos_c + 1] - seg.ptr[pos_c])[found]
            known.update(zip(missing, df.tolist(), strict=True))
        return np.fromiter(map(known.__getitem__, wanted_list), np.float64, len(wanted_list))
