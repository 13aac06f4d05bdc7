"""Rocchio-style term vectors: from top hits (pseudo-relevance feedback) or liked papers.

A paper becomes the L2-normalised TF-IDF vector of its terms; a set of papers
their weighted mean, cut to the strongest terms. Scoring such a vector is a
weighted BM25 query, so it runs on the same postings as the profile's words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from digestbot.ranking.lexical import Floats, LexicalIndex, weighted_terms

MIN_DF = 2  # a term seen in one paper only cannot pull others toward it
MAX_DF_SHARE = 0.5  # nor can one that half the papers hold


@dataclass(frozen=True, slots=True)
class TermVector:
    cols: np.ndarray  # int64 term columns
    weights: Floats

    def score(self, index: LexicalIndex) -> Floats:
        return index.weighted_sum(self.cols.tolist(), self.weights.tolist())


def paper_vector(index: LexicalIndex, title: str, abstract: str) -> dict[int, float]:
    counts, _ = weighted_terms(title, abstract)
    if not counts:
        return {}
    cols = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    df = index.document_frequency(cols)
    n = max(index.n_live, 1)
    idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
    useful = (df >= MIN_DF) & (df <= MAX_DF_SHARE * max(index.n_live, 1))
    weight = (1.0 + np.log(tf)) * idf * useful
    norm = float(np.linalg.norm(weight)) or 1.0
    return dict(zip(cols.tolist(), (weight / norm).tolist(), strict=True))


def centroid(
    index: LexicalIndex,
    texts: Sequence[tuple[str, str]],
    *,
    weights: Sequence[float] | None = None,
    top_terms: int,
) -> TermVector:
    """Weighted mean of the papers' vectors, keeping the ``top_terms`` strongest terms."""
    vectors = [paper_vector(index, title, abstract) for title, abstract in texts]
    return vectors_centroid(vectors, weights=weights, top_terms=top_terms)


def vectors_centroid(
    vectors: Sequence[dict[int, float]],
    *,
    weights: Sequence[float] | None = None,
    top_terms: int,
) -> TermVector:
    """``centroid`` of papers whose vectors (``paper_vector``) are already built."""
    given = weights if weights is not None else [1.0] * len(vectors)
    norm = sum(given) or 1.0
    sizes = [len(vector) for vector in vectors]
    count = sum(sizes)
    if not count:
        return TermVector(np.zeros(0, dtype=np.int64), np.zeros(0))
    every_col = np.fromiter(chain.from_iterable(vectors), dtype=np.int64, count=count)
    values = np.fromiter(
        chain.from_iterable(vector.values() for vector in vectors), dtype=np.float64, count=count
    )
    contributions = values * np.repeat(np.asarray(given, dtype=np.float64), sizes) / norm
    cols, at = np.unique(every_col, return_inverse=True)
    # per column, its contributions added in the papers' order, as a running sum would
    vals: Floats = np.bincount(at, weights=contributions, minlength=len(cols)).astype(
        np.float64, copy=False
    )
    keep = np.lexsort((cols, -vals))[:top_terms]
    keep = keep[vals[keep] > 0]
    return TermVector(cols[keep], vals[keep])
