"""Proximity treats a keyword's hyphenated word as one unit, as phrase matching does: its
words in a row, or its joined form (``multi-modal``: ``multi modal`` or ``multimodal``)."""

from __future__ import annotations

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.ranking import rank
from digestbot.ranking.query import close_together
from digestbot.ranking.text import words
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."


def test_a_hyphenated_keyword_word_close_to_the_others_outranks_it_far_apart() -> None:
    # the same content words; only the distance differs (one word between against four);
    # neither holds the keyword's phrase, so its words found apart are what counts
    close_title = "Multimodal robust reasoning for deep image classifiers"
    far_title = "Multimodal robust classifiers for deep image reasoning"
    papers = [
        Paper(title=close_title, abstract=FILLER),
        Paper(title=far_title, abstract=FILLER),
        Paper(title="Protein folding", abstract=FILLER),
    ]
    profile = Profile(name="p", keywords=["multi-modal reasoning"])
    got = {s.paper.title: s for s in rank(papers, profile, now=NOW)}
    assert got[close_title].score > got[far_title].score > 0
    assert set(got[close_title].matched) == {"multi-modal", "reasoning"}
    assert got["Protein folding"].score == 0


def test_a_unit_of_several_words_is_found_as_consecutive_words_or_joined() -> None:
    near = ("domain specif|domainspecif", "adapt")
    assert close_together(words("domain-specific adapters")[0], near, 1)
    assert close_together(words("adapters that are domain-specific")[0], near, 1)
    assert close_together(words("domainspecific adapters")[0], near, 1)
    # its words apart or in another order are not the unit
    assert not close_together(words("specific domain adapters")[0], near, 3)
    assert not close_together(words("domain adapters, specific")[0], near, 3)
    # the distance runs between the units' nearest ends
    assert close_together(words("domain-specific vision text adapters")[0], near, 3)
    assert not close_together(words("domain-specific vision text adapters")[0], near, 2)
