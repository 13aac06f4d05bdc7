"""Liked papers' semantic evidence: label spreading over mutual nearest neighbours."""

from __future__ import annotations

import numpy as np

from digestbot.config import Profile
from digestbot.ranking.liked_graph import candidate_rows, graph_rows, label_spreading
from digestbot.ranking.semantic import Embedder, semantic_scores

D = 16


def axis(i: int) -> np.ndarray:
    v = np.zeros(D)
    v[i] = 1.0
    return v


def unit(v: np.ndarray) -> np.ndarray:
    return np.asarray(v / np.linalg.norm(v))


def test_papers_packed_around_a_liked_paper_beat_a_group_a_little_nearer_the_centroid() -> None:
    liked_a, liked_b = axis(0), axis(1)
    centre = unit(liked_a + liked_b)
    # seven papers around the first liked paper: cosine 0.693 to the centroid
    around_a = [unit(liked_a + 0.2 * s * axis(i)) for i in (3, 4, 5) for s in (1, -1)]
    around_a.append(unit(liked_a + 0.2 * axis(6)))
    # seven papers around a direction nearer the centroid (cosine 0.706), no liked paper
    # among their nearest
    elsewhere = unit(0.72 * centre + np.sqrt(1 - 0.72**2) * axis(11))
    group = [unit(elsewhere + 0.2 * s * axis(i)) for i in (12, 13, 14) for s in (1, -1)]
    group.append(unit(elsewhere + 0.2 * axis(15)))
    unrelated = [unit(axis(7) + 0.2 * (-1) ** i * axis(8 + i % 3)) for i in range(30)]
    vectors = np.asarray([liked_a, liked_b, *around_a, *group, *unrelated], dtype=np.float32)
    assert float(vectors[2] @ centre) < float(vectors[9] @ centre)

    embedder = Embedder("unused-for-like-only-profiles", max_tokens=16, batch_size=1)
    got = semantic_scores(embedder, vectors, Profile(name="p", like=["a", "b"]), liked_rows=[0, 1])
    assert min(got[2:9]) > max(got[9:16]) > 0
    assert got[16:].tolist() == [0.0] * 30


def test_evidence_spreads_only_along_links_both_ends_choose() -> None:
    # seed S; X's nearest is S, but S's nearest is Y: only Y is linked to S
    vectors = np.asarray(
        [
            unit(np.array([1.0, 0.0, 0.0])),  # S (seed)
            unit(np.array([1.0, 0.3, 0.0])),  # Y: S and Y are each other's nearest
            unit(np.array([1.0, 0.0, 1.2])),  # X: nearest S, but not S's nearest
            unit(np.array([0.0, 1.0, 0.0])),  # far
        ],
        dtype=np.float32,
    )
    seeds = np.asarray([True, False, False, False])
    spread = label_spreading(vectors, seeds, neighbours=1)
    assert spread[0] > spread[1] > 0
    assert spread[2] == 0 and spread[3] == 0


def test_no_seed_spreads_nothing() -> None:
    vectors = np.eye(3, dtype=np.float32)
    assert label_spreading(vectors, np.zeros(3, dtype=bool)).tolist() == [0.0, 0.0, 0.0]


def test_candidates_are_the_rows_with_a_vector_nearest_the_centroid() -> None:
    cosine = np.asarray([0.9, 0.1, 0.8, 0.95, 0.7, 0.2])
    have = np.asarray([0, 1, 2, 4, 5])  # row 3 has no vector
    assert candidate_rows(cosine, have, limit=3).tolist() == [0, 2, 4]
    assert candidate_rows(cosine, have, limit=10).tolist() == [0, 1, 2, 4, 5]


def test_the_graph_stays_small_however_many_papers_are_liked() -> None:
    # thousands of 👍 over the months: the graph (a dense n x n solve) still links at most
    # the 3 papers nearest the centroid and the 3 liked papers nearest it
    cosine = np.asarray([0.1 * i for i in range(10)])  # row 9 is nearest the centroid
    have = np.arange(10)
    liked = [0, 1, 2, 3, 4, 5, 8]
    rows, seeds = graph_rows(cosine, have, liked, limit=3)
    assert rows.tolist() == [4, 5, 7, 8, 9]  # liked 8, 5, 4 and the nearest 9, 8, 7
    assert seeds.tolist() == [True, True, False, True, False]
    few, few_seeds = graph_rows(cosine, have, [0, 8], limit=3)  # few liked: all are seeds
    assert few.tolist() == [0, 7, 8, 9] and few_seeds.tolist() == [True, False, True, False]
