"""A profile without words of its own searches for its liked papers' shared phrases."""

from __future__ import annotations

import tracemalloc

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.lexical import Document, LexicalIndex
from digestbot.ranking.liked_terms import candidate_phrases, liked_phrases
from tests.conftest import NOW

LIKED = [
    ("Data pruning beats scaling laws", "We prune the data with a pruning metric."),
    ("Targeted data pruning", "Data pruning by optimal transport selects a subset."),
]
# 30 papers on other topics: "data pruning" and "optimal transport" are rare among them,
# "data" alone is not (in 7 of the 32 papers: above the 10% cut)
OTHERS = [(f"Protein folding study {i}", f"Residue contacts in protein {i}.") for i in range(20)]
OTHERS += [(f"Protein data study {i}", f"Residue contacts in protein {i}.") for i in range(4)]
OTHERS += [
    ("Vision transformers at scale", "Scaling laws for vision transformers."),
    ("Token pruning for transformers", "We prune tokens of vision transformers."),
    ("Optimal transport for domain adaptation", "Optimal transport aligns the domains."),
    ("A survey of data pruning", "Data pruning removes redundant examples."),
    ("Gardening robots", "Robots water plants."),
    ("Chess engines", "Search in chess."),
]


def index_of(texts: list[tuple[str, str]]) -> LexicalIndex:
    return LexicalIndex.build(
        [
            Document(pk=i, title=t, abstract=a, upvotes=0, published=None)
            for i, (t, a) in enumerate(texts)
        ]
    )


def test_candidates_are_runs_of_content_words_counted_twice_in_the_title() -> None:
    got = candidate_phrases("Data pruning, at scale", "We prune data.")
    assert got["data prune"] == ("data pruning", 2.0)
    assert got["data"] == ("data", 3.0)  # twice in the title, once in the abstract
    assert "prune scale" not in got  # a comma ends the run
    assert "prune data" in got  # "We" is a stop word, "prune data" a run
    assert all(len(key.split()) <= 3 for key in got)


def test_a_phrase_in_both_liked_papers_comes_first_and_unique_or_common_ones_are_left_out() -> None:
    index = index_of(LIKED + OTHERS)
    phrases = liked_phrases(index, LIKED)
    assert phrases[0] == "data pruning"
    # "metric" and "subset" occur in one liked paper and nowhere else
    assert "metric" not in phrases and "subset" not in phrases
    assert "data" not in phrases
    # only one liked paper has "optimal transport": it ranks below the shared phrase
    assert "optimal transport" in phrases
    assert phrases.index("optimal transport") > phrases.index("data pruning")


def test_common_words_do_not_describe_the_liked_papers() -> None:
    # "protein" is in 24 of 32 papers: far above the 10% cut
    liked = [("Protein data pruning", "Protein data."), ("Protein data pruning", "Protein data.")]
    phrases = liked_phrases(index_of(liked + OTHERS), liked)
    assert "protein" not in phrases and "data pruning" in phrases


def papers() -> list[Paper]:
    return [Paper(title=t, abstract=a) for t, a in LIKED + OTHERS]


def test_a_like_only_profile_finds_and_names_the_liked_papers_shared_phrase() -> None:
    profile = Profile(name="p", like=[t for t, _ in LIKED])
    ranked = {s.paper.title: s for s in rank(papers(), profile, now=NOW)}
    survey = ranked["A survey of data pruning"]
    assert survey.score > ranked["Token pruning for transformers"].score > 0
    assert survey.score > ranked["Vision transformers at scale"].score
    assert "data pruning" in survey.matched
    assert "data" not in survey.matched
    assert "matches data pruning" in survey.why
    assert survey.why.startswith("like “")  # the liked paper it is nearest stays named


def test_a_profile_with_keywords_does_not_add_the_liked_papers_phrases() -> None:
    profile = Profile(name="p", keywords=["vision transformers"], like=[t for t, _ in LIKED])
    ranked = {s.paper.title: s for s in rank(papers(), profile, now=NOW)}
    assert "data pruning" not in ranked["A survey of data pruning"].matched
    assert ranked["Vision transformers at scale"].matched == ("vision transformers",)


def test_keywords_without_usable_words_leave_the_profile_to_its_liked_papers_phrases() -> None:
    # a keyword of stop words, one-letter words or symbols only searches for nothing, so
    # the profile has no words of its own
    profile = Profile(name="p", keywords=["α β", "the", "→ ∞"], like=[t for t, _ in LIKED])
    ranked = {s.paper.title: s for s in rank(papers(), profile, now=NOW)}
    survey = ranked["A survey of data pruning"]
    assert "data pruning" in survey.matched
    assert "matches data pruning" in survey.why


def test_many_liked_papers_are_described_without_a_phrases_x_papers_table() -> None:
    # a like-only profile fed by months of 👍: 300 liked papers of 60 distinct words each
    # hold ~53,000 phrases; a table of every phrase's count in every liked paper (16 million
    # cells, filled by a Python loop) peaked at ~415 MB here, memory linear in the phrases ~45
    liked = [
        (f"Study {i}", " ".join(f"qz{i}w{j}" for j in range(60)) + ". Data pruning.")
        for i in range(300)
    ]
    filler = [(f"Gardening note {i}", f"Plants and water {i}.") for i in range(3000)]
    index = index_of(liked + OTHERS + filler)  # "data pruning": in 301 of 3330 papers
    tracemalloc.start()
    try:
        phrases = liked_phrases(index, liked)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert phrases[0] == "data pruning"  # in every liked paper and in the survey
    assert peak < 100_000_000
