"""Scores -> ranked ``ScoredPaper`` values with a short deterministic ``why``.

Order: score descending, then upvotes descending, then paper id (stable on ties).
``why`` names the matched profile terms strongest first; when liked papers drove
the score more than the profile's words, it names the most similar liked paper.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from digestbot.models import Paper, ScoredPaper
from digestbot.ranking.scorer import ProfileScores

WHY_TERMS = 4
MATCH_FLOOR = 0.05  # a term adding under 5% of the strongest term's part is not "matched"
PART_ORDER = (
    "profile",
    "like",
    "semantic",
    "expansion",
    "dislike",
    "upvotes",
    "recency",
)


def order_rows(
    scores: ProfileScores,
    rows: np.ndarray,
    *,
    upvotes: np.ndarray,
    ids: list[str],
    ids_sorted: bool = False,
) -> list[int]:
    """Positions into ``rows`` best first: score, then upvotes, then id.

    ``ids_sorted`` says the papers come in id order already (no string sort needed).
    """
    rounded = np.round(scores.total[rows], 6)
    if ids_sorted:
        id_rank = np.arange(len(ids))
    else:
        id_rank = np.argsort(np.argsort(np.asarray(ids, dtype=str), kind="stable"), kind="stable")
    return [int(i) for i in np.lexsort((id_rank, -upvotes, -rounded))]


def breakdown(scores: ProfileScores, row: int) -> dict[str, float]:
    out = {
        name: round(float(scores.parts[name][row]), 6)
        for name in PART_ORDER
        if name in scores.parts
    }
    for feature, value in zip(scores.features, scores.features_at([row])[0].tolist(), strict=True):
        if value > 0:
            key = f"{feature.kind}:{feature.label}"
            out[key] = round(out.get(key, 0.0) + value, 6)
    return out


def matched_labels(scores: ProfileScores, row: int) -> tuple[str, ...]:
    """Matched profile terms, strongest first; traces under ``MATCH_FLOOR`` of the best left out."""
    values = scores.features_at([row])[0]
    floor = MATCH_FLOOR * float(values.max()) if len(values) else 0.0
    order = sorted(
        (j for j in range(len(values)) if values[j] > 0 and values[j] >= floor),
        key=lambda j: (-round(float(values[j]), 9), scores.features[j].label),
    )
    return tuple(dict.fromkeys(scores.features[j].label for j in order))


def strongest_labels(scores: ProfileScores, rows: np.ndarray) -> list[tuple[str, ...]]:
    """``matched`` for many rows at once, cheaply: the single strongest term (or none)."""
    if not scores.features or not len(rows):
        return [() for _ in range(len(rows))]
    values = scores.features_at(rows)
    best = np.argmax(values, axis=1)
    has = values[np.arange(len(rows)), best] > 0
    labels = [(f.label,) for f in scores.features]
    empty: tuple[str, ...] = ()
    return [labels[j] if ok else empty for j, ok in zip(best.tolist(), has.tolist(), strict=True)]


def why(
    scores: ProfileScores, row: int, *, matched: tuple[str, ...], liked_title: Callable[[int], str]
) -> str:
    like = float(scores.parts["like"][row]) if "like" in scores.parts else 0.0
    profile = float(scores.parts["profile"][row]) if "profile" in scores.parts else 0.0
    nearest = int(scores.nearest_liked[row]) if scores.nearest_liked is not None else None
    return why_text(
        excluded=bool(scores.excluded[row]),
        disliked=bool(scores.disliked[row]),
        total=float(scores.total[row]),
        like=like,
        profile=profile,
        nearest=nearest,
        matched=matched,
        liked_title=liked_title,
    )


def why_text(
    *,
    excluded: bool,
    disliked: bool,
    total: float,
    like: float,
    profile: float,
    nearest: int | None,
    matched: tuple[str, ...],
    liked_title: Callable[[int], str],
) -> str:
    if excluded:
        return "excluded by profile"
    if disliked:
        return "marked 👎"
    if total <= 0:
        return "no profile terms matched"
    parts: list[str] = []
    like_first = like > profile and nearest is not None
    if like_first and nearest is not None:
        parts.append(f"like “{liked_title(nearest)}”")
    if matched:
        parts.append("matches " + ", ".join(matched[:WHY_TERMS]))
    if like > 0 and not like_first and nearest is not None:
        parts.append(f"like “{liked_title(nearest)}”")
    if not parts:
        parts.append("shares terms with the best matches")
    return "; ".join(parts)


def assemble(
    scores: ProfileScores,
    rows: Sequence[int],
    papers: Sequence[Paper],
    *,
    liked_title: Callable[[int], str],
    detailed: int | None = None,
    order: list[int] | None = None,
) -> list[ScoredPaper]:
    """One ``ScoredPaper`` per (row, paper), best first (``order``: as ``order_rows``).

    The best ``detailed`` papers (all when None) carry the full breakdown and every
    matched term; the rest (deep in a large store) their strongest term only and an
    empty breakdown (``digestbot explain`` gives any paper's full breakdown).
    """
    row_array = np.asarray(rows, dtype=np.int64)
    if order is None:
        order = order_rows(
            scores,
            row_array,
            upvotes=np.asarray([p.upvotes for p in papers], dtype=np.int64),
            ids=[p.id for p in papers],
        )
    limit = len(order) if detailed is None else detailed
    ordered = row_array[np.asarray(order, dtype=np.int64)] if order else row_array
    quick = strongest_labels(scores, ordered[limit:])
    totals = np.round(scores.total[ordered], 6).tolist()
    zeros = np.zeros(len(ordered))
    likes = (scores.parts["like"][ordered] if "like" in scores.parts else zeros).tolist()
    profiles = (scores.parts["profile"][ordered] if "profile" in scores.parts else zeros).tolist()
    excluded = scores.excluded[ordered].tolist()
    disliked = scores.disliked[ordered].tolist()
    nearest: list[int | None] = (
        scores.nearest_liked[ordered].tolist()
        if scores.nearest_liked is not None
        else [None] * len(ordered)
    )
    out: list[ScoredPaper] = []
    for k, pos in enumerate(order):
        total = totals[k]
        if total <= 0:
            matched: tuple[str, ...] = ()
            detail: dict[str, float] = {}
        elif k < limit:
            row = int(ordered[k])
            matched = matched_labels(scores, row)
            detail = breakdown(scores, row)
        else:
            matched = quick[k - limit]
            detail = {}
        text = why_text(
            excluded=excluded[k],
            disliked=disliked[k],
            total=total,
            like=likes[k],
            profile=profiles[k],
            nearest=nearest[k],
            matched=matched,
            liked_title=liked_title,
        )
        out.append(
            ScoredPaper(paper=papers[pos], score=total, why=text, matched=matched, breakdown=detail)
        )
    return out
