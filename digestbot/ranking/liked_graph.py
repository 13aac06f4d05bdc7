"""Label spreading from liked papers over a mutual nearest-neighbour graph of embeddings.

The cosine to the liked papers' centroid favours a larger topic the liked papers
also touch (two papers on data pruning both mention scaling laws). Spreading from
the liked papers over the graph that links each paper to its ``GRAPH_NEIGHBOURS``
nearest papers, where both are among each other's nearest (Zhou et al., 2004,
"Learning with local and global consistency"), follows the papers packed around
the liked ones instead. The graph covers only the ``GRAPH_CANDIDATES`` papers
nearest the centroid and as many of the liked papers nearest it (``graph_rows``): a
small dense problem however large the store and however many papers are liked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from digestbot.ranking.lexical import Floats

GRAPH_CANDIDATES = 150  # papers nearest the liked centroid that the graph links
GRAPH_NEIGHBOURS = 7  # each paper's nearest papers (kept where the link is mutual)
GRAPH_ALPHA = 0.85  # how far evidence spreads (0: only the liked papers themselves)


def candidate_rows(cosine: Floats, have: npt.NDArray[np.int64], *, limit: int) -> np.ndarray:
    """The ``limit`` rows of ``have`` with the highest ``cosine`` (sorted by row)."""
    if len(have) <= limit:
        return np.sort(have)
    values = cosine[have]
    top = np.argpartition(-values, limit - 1)[:limit]
    return np.sort(have[top])


def graph_rows(
    cosine: Floats, have: npt.NDArray[np.int64], liked: Sequence[int], *, limit: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """The rows the graph links (sorted) and which of them are seeds: the ``limit`` rows of
    ``have`` with the highest ``cosine`` and the ``limit`` liked rows with the highest (years
    of 👍 must not make the dense solve thousands of rows wide)."""
    seeds = candidate_rows(cosine, np.asarray(liked, dtype=np.int64), limit=limit)
    rows = np.union1d(candidate_rows(cosine, have, limit=limit), seeds)
    return rows, np.isin(rows, seeds)


def label_spreading(
    vectors: npt.NDArray[np.float32],
    seeds: npt.NDArray[np.bool_],
    *,
    neighbours: int = GRAPH_NEIGHBOURS,
    alpha: float = GRAPH_ALPHA,
) -> Floats:
    """Per row of ``vectors`` (unit length), the evidence spread from the ``seeds`` rows:
    F = (I - alpha S)^-1 y, with S the symmetrically normalised mutual k-nearest-neighbour
    graph (cosine weights) and y the seeds' indicator over their count."""
    n = len(vectors)
    if n < 2 or not seeds.any():
        return np.zeros(n)
    k = min(neighbours, n - 1)
    similarity = np.asarray(vectors @ vectors.T, dtype=np.float64)
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    links = np.zeros((n, n))
    rows = np.arange(n)[:, None]
    links[rows, nearest] = np.maximum(similarity[rows, nearest], 0.0)
    links = np.minimum(links, links.T)  # mutual neighbours only
    degree = links.sum(axis=1)
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    normalised = links * scale[:, None] * scale[None, :]
    start = seeds.astype(np.float64) / float(seeds.sum())
    return np.asarray(np.linalg.solve(np.eye(n) - alpha * normalised, start), dtype=np.float64)
