"""Relevance: score papers against a profile and say why.

``rank(papers, profile, *, now)`` is the interface every caller uses; it builds
an in-memory index of the papers it is given. ``digestbot.pipeline.rank_profile``
scores the persisted, incrementally-updated index of the whole store instead
(``digestbot.ranking.persist``); both go through ``score_profile``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from digestbot.config import Profile, RankingSettings
from digestbot.ids import normalize_title
from digestbot.models import Paper, ScoredPaper
from digestbot.ranking.acronyms import count_papers, mined_expansions
from digestbot.ranking.explain import DIRECT_EVIDENCE, assemble, nearest_by_evidence
from digestbot.ranking.lexical import Document, Floats, LexicalIndex
from digestbot.ranking.scorer import score_profile
from digestbot.ranking.semantic import (
    Embedder,
    Vectors,
    liked_share,
    nearest_liked,
    semantic_scores,
)
from digestbot.ranking.text import static_acronym_keys


def resolve_likes(likes: Sequence[str], *, ids: Sequence[str], titles: Sequence[str]) -> list[int]:
    """Positions of the papers a ``like`` list names, by id or exact (normalised) title; a
    title with no letter or digit (``???``: distinct papers) by that exact title."""
    by_id = {pid: i for i, pid in enumerate(ids)}
    by_title: dict[str, int] = {}
    for i, title in enumerate(titles):
        by_title.setdefault(normalize_title(title) or "\0" + title.strip(), i)
    out: list[int] = []
    for item in likes:
        hit = by_id.get(item.strip())
        if hit is None:
            hit = by_title.get(normalize_title(item) or "\0" + item.strip())
        if hit is not None and hit not in out:
            out.append(hit)
    return out


def rank(
    papers: Sequence[Paper],
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings | None = None,
    feedback: Sequence[tuple[str, int]] = (),
    semantic: Floats | None = None,
    vectors: Vectors | None = None,
    embedder: Embedder | None = None,
) -> list[ScoredPaper]:
    """Every paper, best first, each with a score, a short ``why`` and a breakdown.

    ``feedback`` is (paper id, +1 | -1) votes: 👍 pulls toward, 👎 pushes away.
    Excluded and 👎 papers come last with score 0.

    ``semantic`` is embedding evidence per paper, computed by the caller; or, with
    ``vectors`` (the papers' unit embeddings, row i for ``papers[i]``, a row of zeros where
    a paper has none) and an ``embedder`` (for the profile's texts), it is computed here as
    the store's rank does (``semantic.semantic_scores``, without title vectors). Given
    ``vectors``, ``why`` names the liked paper nearest by cosine where the liked papers'
    semantic evidence outweighs their words, as the store's rank does
    (``explain.nearest_by_evidence``); without them, the nearest by TF-IDF.
    """
    if not papers:
        return []
    index = LexicalIndex.build(
        [
            Document(
                pk=i, title=p.title, abstract=p.abstract, upvotes=p.upvotes, published=p.published
            )
            for i, p in enumerate(papers)
        ]
    )
    ids = [p.id for p in papers]
    liked = resolve_likes(profile.like, ids=ids, titles=[p.title for p in papers])
    position = {pid: i for i, pid in enumerate(ids)}
    for paper_id, value in feedback:
        row = position.get(paper_id)
        if value > 0 and row is not None and row not in liked:
            liked.append(row)
    disliked = [position[pid] for pid, v in feedback if v < 0 and pid in position]
    liked = [row for row in liked if row not in disliked]
    has = None
    if vectors is not None:
        if len(vectors) != len(papers):
            raise ValueError(f"{len(vectors)} vectors for {len(papers)} papers")
        has = np.any(vectors != 0, axis=1)
        if semantic is None and embedder is not None and has.any():
            semantic = semantic_scores(embedder, vectors, profile, liked_rows=liked, has=has)
    scores = score_profile(
        index,
        profile,
        texts=lambda rows: [(papers[r].title, papers[r].abstract) for r in rows],
        liked_rows=liked,
        disliked_rows=disliked,
        settings=settings or RankingSettings(),
        now=now,
        semantic=semantic,
        # the acronyms these papers define, as the store's rank reads its papers'
        mined=mined_expansions(
            count_papers((p.title, p.abstract) for p in papers), static=static_acronym_keys()
        ),
    )
    if vectors is not None and has is not None and liked:
        by_cosine = nearest_liked(vectors, liked, has=has)
        nearest = nearest_by_evidence(scores, by_cosine, liked_share=liked_share(profile))
        scores = replace(scores, nearest_liked=nearest)
    return assemble(
        scores,
        list(range(len(papers))),
        papers,
        liked_title=lambda k: papers[liked[k]].title,
    )


def is_direct(item: ScoredPaper) -> bool:
    """Whether it matched the profile itself: as the ranking says (``direct``, light papers
    too), else from its breakdown (one without any taken as direct)."""
    if item.direct is not None:
        return item.direct
    return not item.breakdown or any(item.breakdown.get(p, 0.0) > 0 for p in DIRECT_EVIDENCE)


def pick(
    ranked: Sequence[ScoredPaper], profile: Profile, *, relative_floor: float = 0.2
) -> list[ScoredPaper]:
    """The digest's papers, at most ``top_k`` of them, best first.

    A paper is picked when it matched the profile itself (its terms, liked papers or
    meaning: a paper reached only through query expansion is not), scores at least
    ``min_score``, and at least ``relative_floor`` times the best paper's score, so a
    day with one strong match does not pad the digest with weak ones.
    """
    if not ranked:
        return []
    best = ranked[0].score
    floor = max(profile.min_score, relative_floor * best)
    chosen = [item for item in ranked if item.score > 0 and item.score >= floor and is_direct(item)]
    return chosen[: profile.top_k]


__all__ = ["pick", "rank", "resolve_likes"]
