"""A profile as weighted lexical features: keyword phrases, description words, exclusions.

A keyword is matched as a phrase (all its bigrams), or as its acronym
counterpart, whichever scores better; its words found apart earn a little. A
description contributes its rarer content words and adjacent pairs at a lower
weight: words common in the corpus (``model``, ``network``) are filler there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digestbot.config import Profile
from digestbot.ranking.lexical import Floats, LexicalIndex
from digestbot.ranking.text import (
    column,
    expansions,
    labelled_terms,
    phrase_terms,
    phrase_unigrams,
    terms,
    words,
)

SCATTER_WEIGHT = 0.5  # words of a multi-word keyword found apart, relative to the phrase
DESCRIPTION_WEIGHT = 0.35  # a description word, relative to a keyword
DESCRIPTION_MAX_DF = 0.15  # description words in more than this share of papers are filler


@dataclass(frozen=True, slots=True)
class Feature:
    """One thing a profile asks for; ``value`` is its BM25 evidence per row."""

    label: str
    kind: str  # keyword | description
    weight: float
    alternatives: tuple[tuple[str, ...], ...]  # each: the index terms of one phrasing
    scattered: tuple[str, ...] = ()

    def value(self, index: LexicalIndex) -> Floats:
        best: Floats | None = None
        for alternative in self.alternatives:
            if not alternative:
                continue
            share = 1.0 / len(alternative)
            total = index.weighted_sum([column(t) for t in alternative], [share] * len(alternative))
            best = total if best is None else np.maximum(best, total, out=best)
        if best is None:
            best = np.zeros(index.n_rows)
        if self.scattered:
            share = SCATTER_WEIGHT / len(self.scattered)
            best += index.weighted_sum(
                [column(t) for t in self.scattered], [share] * len(self.scattered)
            )
        return best


def keyword_features(profile: Profile) -> list[Feature]:
    out: list[Feature] = []
    for keyword, weight in profile.keywords.items():
        alternatives = tuple(tuple(phrase_terms(p)) for p in expansions(keyword))
        unigrams = phrase_unigrams(keyword)
        out.append(
            Feature(
                label=keyword,
                kind="keyword",
                weight=weight,
                alternatives=alternatives,
                scattered=tuple(unigrams) if len(unigrams) > 1 else (),
            )
        )
    return out


def description_features(profile: Profile, index: LexicalIndex) -> list[Feature]:
    """Rarer description words and adjacent pairs not already given as keywords."""
    tokens = words(profile.description)
    if not tokens[0]:
        return []
    surface = labelled_terms(profile.description)
    taken = {t for kw in profile.keywords for t in phrase_terms(kw) + phrase_unigrams(kw)}
    limit = DESCRIPTION_MAX_DF * max(index.n_live, 1)
    out: list[Feature] = []
    for term in dict.fromkeys(terms(tokens)):
        if term in taken:
            continue
        df = float(index.document_frequency(np.asarray([column(term)], dtype=np.int64))[0])
        if df == 0 or df > limit:
            continue
        out.append(
            Feature(
                label=surface.get(term, term),
                kind="description",
                weight=DESCRIPTION_WEIGHT,
                alternatives=((term,),),
            )
        )
    return out


def excluded_rows(index: LexicalIndex, phrases: Sequence[str]) -> np.ndarray:
    """Rows holding any exclude phrase (or its acronym counterpart) in title or abstract."""
    mask = np.zeros(index.n_rows, dtype=bool)
    for phrase in phrases:
        for variant in expansions(phrase):
            needed = phrase_terms(variant)
            if not needed:
                continue
            hits = np.ones(index.n_rows, dtype=bool)
            for term in needed:
                present = np.zeros(index.n_rows, dtype=bool)
                present[index.bm25(column(term))[0]] = True
                hits &= present
            mask |= hits
    return mask
