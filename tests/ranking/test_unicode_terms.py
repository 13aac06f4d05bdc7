"""Keywords and papers in any script: Cyrillic, Greek, Chinese and Japanese, and Latin
letters with diacritics, are matched as ASCII words are."""

from __future__ import annotations

import pytest

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.text import fold, phrase_terms, words
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."

PAPERS = [
    Paper(title="Трансформеры для машинного перевода", abstract="Мы обучаем модели. " + FILLER),
    Paper(title="αβ-pruning for game trees", abstract="Search with cut-offs. " + FILLER),
    Paper(title="深層強化学習によるロボット制御", abstract="ロボットの方策を学習する。"),
    Paper(
        title="化学反応の学習と習慣", abstract="化学の習慣について。"
    ),  # 化学, 学習: not 強化学習
    Paper(title="強い化石の学校で習う", abstract="石の学校"),  # 強 化 学 習 apart only
    Paper(title="Schrödinger bridges between distributions", abstract=FILLER),
    Paper(title="A naïve Bayes baseline for spam", abstract=FILLER),
    Paper(title="Pruning of decision trees", abstract="Cost-complexity pruning. " + FILLER),
    Paper(title="Bridges and tunnels of Europe", abstract=FILLER),
    Paper(title="Bayesian deep learning", abstract=FILLER),
]


def first(keyword: str) -> tuple[str, str]:
    ranked = rank(PAPERS, Profile(name="p", keywords=[keyword]), now=NOW)
    assert ranked[0].score > ranked[1].score
    return ranked[0].paper.title, ranked[0].why


@pytest.mark.parametrize(
    ("keyword", "title"),
    [
        ("Трансформер", "Трансформеры для машинного перевода"),  # Russian stem: -ы
        ("ТРАНСФОРМЕРЫ", "Трансформеры для машинного перевода"),
        ("αβ-pruning", "αβ-pruning for game trees"),
        ("ΑΒ-pruning", "αβ-pruning for game trees"),
        ("強化学習", "深層強化学習によるロボット制御"),  # the bigrams 強化 化学 学習, in order
        ("ロボット", "深層強化学習によるロボット制御"),
        ("Schrödinger bridge", "Schrödinger bridges between distributions"),
        ("Schrodinger bridge", "Schrödinger bridges between distributions"),
        ("naïve Bayes", "A naïve Bayes baseline for spam"),
        ("naive Bayes", "A naïve Bayes baseline for spam"),
    ],
)
def test_a_keyword_in_any_script_ranks_its_paper_first_and_is_named(
    keyword: str, title: str
) -> None:
    found, why = first(keyword)
    assert found == title
    assert why == f"matches {keyword}"


def test_a_cjk_keyword_is_a_phrase_not_its_characters() -> None:
    ranked = rank(PAPERS, Profile(name="p", keywords=["強化学習"]), now=NOW)
    scores = {item.paper.title: item.breakdown.get("profile", 0.0) for item in ranked}
    assert ranked[0].paper.title == "深層強化学習によるロボット制御"
    # two of its three character pairs (化学, 学習) count as a longer English phrase's two
    # of three word pairs do; its characters apart count for nothing
    assert 0 < scores["化学反応の学習と習慣"] < scores["深層強化学習によるロボット制御"]
    assert scores["強い化石の学校で習う"] == 0


def test_folding() -> None:
    assert fold("Naïve Schrödinger Ørsted STRAßE") == "naive schrodinger orsted strasse"
    assert fold("Трансформер Ёлка йод") == "трансформер елка йод"
    assert fold("ＡＢＣ ﬁne ガ") == "abc fine ガ"  # NFKC: full width, ligatures; kana kept
    # punctuation and symbols outside ASCII go, as before: ASCII text is unchanged
    assert fold("don’t — Plain-ASCII text") == "dont  plain-ascii text"


def test_cjk_text_is_indexed_as_characters_and_their_pairs() -> None:
    assert words("強化学習") == (["強", "化", "学", "習"], [])
    assert phrase_terms("強化学習") == ["強 化", "化 学", "学 習"]
    assert phrase_terms("学") == ["学"]
    # one-letter words of any script are not content words, as in English
    assert words("Трансформеры и αβ-pruning") == (["трансформер", "αβ", "prune"], ["αβpruning"])


def test_tex_accents_as_arxiv_writes_them_are_their_letters() -> None:
    # arXiv keeps Schr\"odinger, Erd\H{o}s; a drop, a journal or a keyword writes Schrödinger
    assert words('Schr\\"odinger bridges') == words("Schrödinger bridges")
    assert words("Erd\\H{o}s graphs and \\L{}\\'od\\'z") == words("Erdős graphs and Łódź")
    papers = [
        Paper(title='Schr\\"odinger bridges between distributions', abstract=FILLER),
        *PAPERS[6:],
    ]
    ranked = rank(papers, Profile(name="p", keywords=["Schrödinger"]), now=NOW)
    assert ranked[0].paper.title == 'Schr\\"odinger bridges between distributions'
    assert ranked[0].score > ranked[1].score
