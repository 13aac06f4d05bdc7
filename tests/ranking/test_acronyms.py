"""An acronym whose expansion is written in several ways (MLP: multilayer perceptron,
multi-layer perceptron) matches each of them, and each of them matches the others."""

from __future__ import annotations

import pytest

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."
TITLES = {
    "MLP": "MLP mixers for tabular inputs",
    "multilayer perceptron": "A multilayer perceptron for tabular inputs",
    "multi-layer perceptron": "A multi-layer perceptron for tabular inputs",
}


@pytest.mark.parametrize("keyword", ["MLP", "multilayer perceptron", "multi-layer perceptron"])
def test_each_spelling_of_mlp_finds_every_other(keyword: str) -> None:
    papers = [Paper(title=t, abstract=FILLER) for t in TITLES.values()]
    papers.append(Paper(title="Protein folding", abstract=FILLER))
    ranked = {
        s.paper.title: s for s in rank(papers, Profile(name="p", keywords=[keyword]), now=NOW)
    }
    for title in TITLES.values():
        assert ranked[title].score > 0, title
        assert ranked[title].matched[0] == keyword
    assert ranked["Protein folding"].score == 0
