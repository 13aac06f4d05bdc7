"""A profile as weighted lexical features: keyword phrases, description words, exclusions.

A keyword is matched as a phrase (all its bigrams), or as its acronym
counterpart, whichever scores better; its words found apart earn its weight,
shared among them, a little more where they stand close together. A
description contributes its rarer content words and adjacent pairs at a lower
weight: words common in the corpus (``model``, ``network``) are filler there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import pairwise

import numpy as np

from digestbot.config import Profile
from digestbot.ranking.lexical import Floats, LexicalIndex
from digestbot.ranking.text import (
    WORD_OR_MARK,
    Mined,
    column,
    expansions,
    fold,
    phrase_terms,
    phrase_unigrams,
    words,
)

SCATTER_WEIGHT = 1.0  # words of a multi-word keyword found apart: its weight, shared among them
DESCRIPTION_WEIGHT = 0.35  # a description word, relative to a keyword
DESCRIPTION_MAX_DF = 0.15  # description words in more than this share of papers are filler


@dataclass(frozen=True, slots=True)
class _Unit:
    surface: str  # as written (folded)
    alternatives: tuple[tuple[str, ...], ...]  # index terms of each phrasing
    single: str | None  # the stem when the unit is one plain word
    joined_to_next: bool  # nothing but a space before the next unit
    # what proximity finds: its stems in order, space-separated, and a hyphenated word's
    # joined stem as another way of writing it, after a "|" (``multi modal|multimod``)
    stems: str = ""


@lru_cache(maxsize=4096)
def _units(text: str, mined: Mined = ()) -> tuple[_Unit, ...]:
    """Content words of a text as written: a hyphenated word is one unit (its phrase or
    joined form); a stop word or punctuation ends adjacency. Remembered per text (a pure
    function of it: profiles are scored again and again with the same words)."""
    out: list[_Unit] = []
    for match in WORD_OR_MARK.finditer(fold(text)):
        token = match.group(0)
        content = phrase_terms(token, whole=False)
        if not content or not token[0].isalnum():
            if out:
                out[-1] = replace(out[-1], joined_to_next=False)
            continue
        alternatives = tuple(
            dict.fromkeys(tuple(phrase_terms(v, whole=False)) for v in expansions(token, mined))
        )
        single = content[0] if len(phrase_unigrams(token)) == 1 else None
        found = "|".join(dict.fromkeys([" ".join(phrase_unigrams(token)), *words(token)[1]]))
        out.append(_Unit(token, alternatives, single, True, found))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Feature:
    """One thing a profile asks for; ``value`` is its BM25 evidence per row.

    A back-off feature (a word of a multi-word keyword) counts only in rows where
    none of ``unless`` (the keyword's phrasings) is found; ``near`` lists the stems
    of its keyword's words, which the scorer rewards where they stand close together.
    """

    label: str
    kind: str  # keyword | description | liked (a liked paper's phrase, scorer._liked_features)
    weight: float
    alternatives: tuple[tuple[str, ...], ...]  # each: the index terms of one phrasing
    unless: tuple[tuple[str, ...], ...] = ()
    near: tuple[str, ...] = ()  # a back-off word's keyword, as stems: the words to find close

    def value(self, index: LexicalIndex) -> Floats:
        best = _best_phrasing(index, self.alternatives)
        if self.unless:
            best[_best_phrasing(index, self.unless) > 0] = 0.0
        return best


def _best_phrasing(index: LexicalIndex, alternatives: tuple[tuple[str, ...], ...]) -> Floats:
    """Per row, the best BM25 evidence over the phrasings (mean over a phrasing's terms)."""
    best: Floats | None = None
    for alternative in alternatives:
        if not alternative:
            continue
        share = 1.0 / len(alternative)
        total = index.weighted_sum([column(t) for t in alternative], [share] * len(alternative))
        best = total if best is None else np.maximum(best, total, out=best)
    return best if best is not None else np.zeros(index.n_rows)


def keyword_features(
    profile: Profile, *, scatter: float | None = None, mined: Mined = ()
) -> list[Feature]:
    """Per keyword: its phrase (or acronym counterpart, ``mined`` from the papers where
    ``ACRONYMS`` has none); for a multi-word keyword also each of its words, at ``scatter``
    (default ``SCATTER_WEIGHT``) x its weight shared among them, where the phrase is
    absent."""
    if scatter is None:
        scatter = SCATTER_WEIGHT
    out: list[Feature] = []
    for keyword, weight in profile.keywords.items():
        out += _keyword_features(keyword, weight, scatter, mined)
    return out


@lru_cache(maxsize=4096, typed=True)
def _keyword_features(
    keyword: str, weight: float, scatter: float, mined: Mined
) -> tuple[Feature, ...]:
    """``keyword_features`` of one keyword: a pure function of its text, weights and
    acronyms, remembered (its text analysis costs more than scoring it)."""
    alternatives = tuple(tuple(phrase_terms(p)) for p in expansions(keyword, mined))
    out = [Feature(label=keyword, kind="keyword", weight=weight, alternatives=alternatives)]
    units = _units(keyword, mined)
    if len(units) < 2:
        return tuple(out)
    share = weight * scatter / len(units)
    # the words are also looked for close together (a hyphenated word as one unit)
    near = tuple(dict.fromkeys(u.stems for u in units))
    near = near if len(near) >= 2 else ()
    for unit in units:
        out.append(
            Feature(
                label=unit.surface,
                kind="keyword",
                weight=share,
                alternatives=unit.alternatives,
                unless=alternatives,
                near=near,
            )
        )
    return tuple(out)


def close_together(stems: Sequence[str], near: Sequence[str], window: int) -> bool:
    """Whether every unit of ``near`` occurs within ``window`` content words of one
    occurrence of its first unit (``stems``: a text's content words in order; a unit is
    a stem, or a hyphenated word's stems space-separated, found as consecutive words, or
    ``|`` and another way to write it; the distance runs between the units' nearest ends)."""
    spans: list[list[tuple[int, int]]] = [[] for _ in near]
    starting: dict[str, list[tuple[int, list[str]]]] = {}
    for k, unit in enumerate(near):
        for written in unit.split("|"):
            parts = written.split(" ")
            starting.setdefault(parts[0], []).append((k, parts))
    for i, word in enumerate(stems):
        for k, parts in starting.get(word, ()):
            if len(parts) == 1 or list(stems[i : i + len(parts)]) == parts:
                spans[k].append((i, i + len(parts) - 1))
    if not all(spans):
        return False

    def gap(a: tuple[int, int], b: tuple[int, int]) -> int:
        return max(b[0] - a[1], a[0] - b[1], 0)

    return any(
        all(any(gap(first, other) <= window for other in others) for others in spans[1:])
        for first in spans[0]
    )


def description_features(profile: Profile, index: LexicalIndex, mined: Mined = ()) -> list[Feature]:
    """Rarer description words and adjacent pairs not already covered by a keyword
    (its words, phrase or acronym counterpart; ``mined``: as ``keyword_features``)."""
    limit = DESCRIPTION_MAX_DF * max(index.n_live, 1)
    out: list[Feature] = []
    for label, alternatives in _description_candidates(
        profile.description, tuple(profile.keywords), mined
    ):
        first = np.asarray([column(t) for t in alternatives[0]], dtype=np.int64)
        df = index.document_frequency(first)
        if float(df.min()) == 0 or float(df.max()) > limit:
            continue
        out.append(
            Feature(
                label=label,
                kind="description",
                weight=DESCRIPTION_WEIGHT,
                alternatives=alternatives,
            )
        )
    return out


@lru_cache(maxsize=1024)
def _description_candidates(
    description: str, keywords: tuple[str, ...], mined: Mined = ()
) -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    """The description's words and adjacent pairs as (label, phrasings), less those a
    keyword covers: a pure function of the texts, remembered (the index then picks the
    rarer ones)."""
    if not words(description)[0]:
        return ()
    taken = {
        t
        for kw in keywords
        for variant in expansions(kw, mined)
        for t in phrase_terms(variant) + phrase_unigrams(variant)
    }
    candidates: dict[str, tuple[str, tuple[tuple[str, ...], ...]]] = {}
    units = _units(description, mined)
    for unit in units:
        candidates.setdefault(unit.alternatives[0][0], (unit.surface, unit.alternatives))
    for a, b in pairwise(units):
        if a.joined_to_next and a.single and b.single:
            pair = f"{a.single} {b.single}"
            candidates.setdefault(pair, (f"{a.surface} {b.surface}", ((pair,),)))
    return tuple(
        (label, alternatives)
        for label, alternatives in candidates.values()
        if not any(t in taken for alt in alternatives for t in alt)
    )


def excluded_rows(index: LexicalIndex, phrases: Sequence[str], mined: Mined = ()) -> np.ndarray:
    """Rows holding any exclude phrase (or its acronym counterpart, ``ACRONYMS``' or
    ``mined``) in title or abstract."""
    mask = np.zeros(index.n_rows, dtype=bool)
    for phrase in phrases:
        for variant in expansions(phrase, mined):
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
