"""The scorer's shortcuts give what the plain computations give: the best rows of many
(with ties), a centroid's sums, and text analysis remembered per keyword and description."""

from __future__ import annotations

import numpy as np

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.expansion import vectors_centroid
from digestbot.ranking.lexical import Document, LexicalIndex
from digestbot.ranking.query import description_features, keyword_features
from digestbot.ranking.scorer import _top_rows
from tests.conftest import NOW


def test_top_rows_of_many_values_with_ties_are_the_best_positive_ones_lower_pk_first() -> None:
    rng = np.random.default_rng(7)
    values = np.round(rng.random(20_000) * 40) / 40 - 0.1  # many ties, zeros, negatives
    pks = rng.permutation(20_000).astype(np.int64) + 100
    expected = sorted(
        (i for i in range(len(values)) if values[i] > 0), key=lambda i: (-values[i], pks[i])
    )
    for k in (1, 10, 30, 1000):
        assert _top_rows(values, pks, k).tolist() == expected[:k]


def test_top_rows_with_fewer_positive_values_than_asked_are_all_of_them() -> None:
    values = np.zeros(5_000)
    values[[4000, 17, 2500]] = [0.5, 0.5, 0.9]
    pks = np.arange(5_000, dtype=np.int64)[::-1].copy()  # row 4000 has the lower pk
    assert _top_rows(values, pks, 30).tolist() == [2500, 4000, 17]


def test_a_centroid_sums_each_terms_weighted_share_and_keeps_the_strongest() -> None:
    vectors = [{3: 0.5, 7: 0.25}, {7: 0.5, 9: 0.125}, {}]
    centre = vectors_centroid(vectors, weights=[3.0, 1.0, 0.0], top_terms=2)
    # 7: 0.25 * 3/4 + 0.5 * 1/4 = 0.3125; 3: 0.5 * 3/4 = 0.375; 9: 0.125 / 4 (cut)
    assert centre.cols.tolist() == [3, 7]
    assert centre.weights.tolist() == [0.375, 0.3125]
    assert vectors_centroid([{}, {}], top_terms=5).cols.tolist() == []


def test_a_keyword_seen_again_with_another_weight_carries_that_weight() -> None:
    light = keyword_features(Profile(name="a", keywords={"state space model": 1.0}))
    heavy = keyword_features(Profile(name="b", keywords={"state space model": 2.0}))
    assert [f.weight for f in light] == [1.0, 1 / 3, 1 / 3, 1 / 3]
    assert [f.weight for f in heavy] == [2.0, 2 / 3, 2 / 3, 2 / 3]
    assert [f.label for f in heavy] == ["state space model", "state", "space", "model"]


def test_a_description_seen_again_with_other_keywords_drops_the_words_they_cover() -> None:
    docs = [
        Document(pk=i, title=f"Paper {i}", abstract=text)
        for i, text in enumerate(
            ["Protein folding with diffusion.", "Galaxy surveys."] + ["Weather today."] * 20
        )
    ]
    index = LexicalIndex.build(docs)
    description = "protein folding by diffusion"
    alone = Profile(name="a", description=description)
    covered = Profile(name="b", description=description, keywords=["diffusion"])
    assert [f.label for f in description_features(alone, index)] == [
        "protein",
        "folding",
        "diffusion",
        "protein folding",
    ]
    assert [f.label for f in description_features(covered, index)] == [
        "protein",
        "folding",
        "protein folding",
    ]


def test_ranking_twice_in_one_process_gives_the_same_scores() -> None:
    papers = [
        Paper(title="Selective state space models", abstract="A state space model for text."),
        Paper(title="Space exploration", abstract="A model of the state of space probes."),
        Paper(title="Attention is enough", abstract="Transformers for text."),
    ]
    profile = Profile(name="p", keywords=["state space model"], description="long sequences")
    first = [(s.paper.title, s.score, s.why) for s in rank(papers, profile, now=NOW)]
    again = [(s.paper.title, s.score, s.why) for s in rank(papers, profile, now=NOW)]
    assert first == again
    assert first[0][0] == "Selective state space models"
