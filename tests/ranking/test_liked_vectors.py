"""Beyond ``LIKED_LEXICAL`` liked papers, each liked paper's term vector is built once:
for choosing the representative ones and for scoring them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from digestbot.ranking import expansion, scorer
from digestbot.ranking.lexical import Document, LexicalIndex

FILLER = "We report experiments on several benchmarks and discuss limitations."
TOPICS = ["pruning", "quantization", "distillation", "attention", "diffusion", "retrieval"]


def test_each_liked_papers_vector_is_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = [
        Document(
            pk=i, title=f"{TOPICS[i % 6]} study number {i}", abstract=f"{TOPICS[i % 6]}. " + FILLER
        )
        for i in range(80)
    ]
    index = LexicalIndex.build(docs)
    liked = [(d.title, d.abstract) for d in docs[:60]]  # more than LIKED_LEXICAL (50)
    built: list[str] = []

    def counting(real: Callable[..., dict[int, float]]) -> Callable[..., dict[int, float]]:
        def vector(index: LexicalIndex, title: str, abstract: str) -> dict[int, float]:
            built.append(title)
            return real(index, title, abstract)

        return vector

    monkeypatch.setattr(scorer, "paper_vector", counting(expansion.paper_vector))
    monkeypatch.setattr(expansion, "paper_vector", counting(expansion.paper_vector))
    skip = np.zeros(index.n_rows, dtype=bool)
    skip[:60] = True
    like, nearest = scorer._like_scores(index, liked, skip=skip)
    assert sorted(built) == sorted(title for title, _ in liked)  # each once
    assert len(like) == 80 and set(nearest.tolist()) <= set(range(60))
