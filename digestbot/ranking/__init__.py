"""Relevance: score papers against a profile and say why.

``rank(papers, profile, *, now)`` is the interface every caller uses; the
scorer behind it may change.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from digestbot.config import Profile
from digestbot.models import Paper, ScoredPaper
from digestbot.ranking.lexical import LexicalIndex, phrase_terms
from digestbot.ranking.text import content_tokens

DESCRIPTION_WEIGHT = 0.4


def _query(profile: Profile) -> list[tuple[str, str, float]]:
    """(label, index term, weight) for every keyword phrase term and description word."""
    parts: list[tuple[str, str, float]] = []
    for keyword, weight in profile.keywords.items():
        terms = phrase_terms(keyword)
        for term in terms:
            parts.append((keyword, term, weight / len(terms)))
    keyword_terms = {t for _, t, _ in parts}
    for word in dict.fromkeys(content_tokens(profile.description)):
        if word not in keyword_terms:
            parts.append((word, word, DESCRIPTION_WEIGHT))
    return parts


def _excluded(index: LexicalIndex, profile: Profile) -> np.ndarray:
    n = index.tf.shape[0]
    mask = np.zeros(n, dtype=bool)
    for term in profile.exclude:
        terms = phrase_terms(term)
        if not terms:
            continue
        hits = index.term_scores(terms) > 0
        mask |= hits.all(axis=1)
    return mask


def rank(papers: Sequence[Paper], profile: Profile, *, now: datetime) -> list[ScoredPaper]:
    """Every paper, best first, each with a score and a short ``why``.

    Papers that match an ``exclude`` term come last with score 0.
    """
    del now  # recency priors come with the relevance work
    if not papers:
        return []
    index = LexicalIndex.build(papers)
    query = _query(profile)
    per_term = index.term_scores([term for _, term, _ in query])
    weights = np.array([w for _, _, w in query]) if query else np.zeros(0)
    contributions = per_term * weights[None, :] if query else per_term
    scores = contributions.sum(axis=1) if query else np.zeros(len(papers))
    excluded = _excluded(index, profile)
    scores = np.where(excluded, 0.0, scores)
    labels = [label for label, _, _ in query]

    results: list[ScoredPaper] = []
    for row, paper in enumerate(papers):
        by_label: dict[str, float] = {}
        if query:
            nonzero = np.flatnonzero(contributions[row])
            for j in nonzero:
                by_label[labels[j]] = by_label.get(labels[j], 0.0) + float(contributions[row, j])
        matched = tuple(sorted(by_label, key=lambda k: (-by_label[k], k)))
        if excluded[row]:
            why = "excluded by profile"
        elif matched:
            why = "matches " + ", ".join(matched[:5])
        else:
            why = "no profile terms matched"
        results.append(
            ScoredPaper(
                paper=paper,
                score=round(float(scores[row]), 6),
                why=why,
                matched=matched,
                breakdown={"lexical": round(float(scores[row]), 6)},
            )
        )
    results.sort(key=lambda s: (-s.score, -s.paper.upvotes, s.paper.id))
    return results


def pick(ranked: Sequence[ScoredPaper], profile: Profile) -> list[ScoredPaper]:
    """The digest's papers: positive score, at least ``min_score``, at most ``top_k``."""
    return [s for s in ranked if s.score > 0 and s.score >= profile.min_score][: profile.top_k]
