"""Scores -> ranked ``ScoredPaper`` values with a short deterministic ``why``.

Order: score descending, then upvotes descending, then paper id (stable on ties).
``why`` names the matched profile terms strongest first; when liked papers drove
the score more than the profile's words, it names the most similar liked paper (by
the evidence that drove it: embeddings or words, ``nearest_by_evidence``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from json.encoder import encode_basestring

import numpy as np

from digestbot.models import Paper, ScoredPaper
from digestbot.ranking.lexical import Floats
from digestbot.ranking.scorer import ProfileScores

WHY_TERMS = 4
MATCH_FLOOR = 0.05  # a term adding under 5% of the strongest term's part is not "matched"
# the parts that are the profile's own evidence (query expansion is not: ``pick``)
DIRECT_EVIDENCE = ("profile", "like", "semantic")
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
    scores: ProfileScores, rows: np.ndarray, *, upvotes: np.ndarray, ids: list[str]
) -> list[int]:
    """Positions into ``rows`` best first: score, then upvotes, then id."""
    return order_best_first(scores.total[rows], upvotes=upvotes, ids=ids).tolist()  # type: ignore[no-any-return]


def order_best_first(totals: np.ndarray, *, upvotes: np.ndarray, ids: list[str]) -> np.ndarray:
    """Positions best first: score (rounded as shown), upvotes, then id.

    Ids are compared only inside runs of equal (score, upvotes); a full string sort
    only when ties are many (a profile that matches little).
    """
    rounded = np.round(np.asarray(totals, dtype=np.float64), 6)
    votes = np.asarray(upvotes, dtype=np.int64)
    order = np.lexsort((-votes, -rounded))
    score_seq, vote_seq = rounded[order], votes[order]
    tied = (score_seq[1:] == score_seq[:-1]) & (vote_seq[1:] == vote_seq[:-1])
    n_tied = int(tied.sum())
    if not n_tied:
        return order
    if n_tied > len(rounded) // 8:
        id_rank = np.empty(len(ids), dtype=np.int64)
        id_rank[np.argsort(np.asarray(ids, dtype=str), kind="stable")] = np.arange(len(ids))
        return np.lexsort((id_rank, -votes, -rounded))
    edges = np.flatnonzero(np.diff(np.concatenate(([False], tied, [False])).astype(np.int8)))
    positions = order.tolist()
    key = ids.__getitem__
    for start, stop in zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True):
        # a run of ties covers positions start..stop (inclusive)
        positions[start : stop + 1] = sorted(positions[start : stop + 1], key=key)
    return np.asarray(positions, dtype=np.int64)


def direct_evidence(scores: ProfileScores, rows: np.ndarray) -> np.ndarray:
    """Per row, whether a ``DIRECT_EVIDENCE`` part is above 0 as its breakdown shows it
    (rounded to 6 places): what ``pick`` reads of a paper without a breakdown."""
    out = np.zeros(len(rows), dtype=bool)
    for name in DIRECT_EVIDENCE:
        if name in scores.parts:
            out |= np.round(scores.parts[name][rows], 6) > 0
    return out


def breakdown(scores: ProfileScores, row: int, values: Floats | None = None) -> dict[str, float]:
    """``values``: the row's ``features_at`` when already computed."""
    out = {
        name: round(float(scores.parts[name][row]), 6)
        for name in PART_ORDER
        if name in scores.parts
    }
    if values is None:
        values = scores.features_at([row])[0]
    for feature, value in zip(scores.features, values.tolist(), strict=True):
        if value > 0:
            key = f"{feature.kind}:{feature.label}"
            out[key] = round(out.get(key, 0.0) + value, 6)
    return out


def matched_labels(
    scores: ProfileScores, row: int, values: Floats | None = None
) -> tuple[str, ...]:
    """Matched profile terms, strongest first; traces under ``MATCH_FLOOR`` of the best left out."""
    if values is None:
        values = scores.features_at([row])[0]
    floor = MATCH_FLOOR * float(values.max()) if len(values) else 0.0
    order = sorted(
        (j for j in range(len(values)) if values[j] > 0 and values[j] >= floor),
        key=lambda j: (-round(float(values[j]), 9), scores.features[j].label),
    )
    return tuple(dict.fromkeys(scores.features[j].label for j in order))


def strongest_feature(scores: ProfileScores, rows: np.ndarray) -> np.ndarray:
    """Per row, the index of its strongest matched feature, or -1 when none matched."""
    if not scores.features or not len(rows):
        return np.full(len(rows), -1, dtype=np.int64)
    values = scores.features_at(rows)
    best = np.argmax(values, axis=1)
    has = values[np.arange(len(rows)), best] > 0
    return np.where(has, best, -1).astype(np.int64)


def strongest_labels(scores: ProfileScores, rows: np.ndarray) -> list[tuple[str, ...]]:
    """``matched`` for many rows at once, cheaply: the single strongest term (or none)."""
    labels: list[tuple[str, ...]] = [(f.label,) for f in scores.features]
    labels.append(())  # index -1: none matched
    return [labels[j] for j in strongest_feature(scores, rows).tolist()]


def nearest_by_evidence(
    scores: ProfileScores, by_cosine: np.ndarray | None, *, liked_share: float
) -> np.ndarray | None:
    """Per row, the liked paper a ``why`` names (a position in ``scores.liked_rows``): the
    nearest by embedding cosine (``by_cosine``, -1 where a row has no vector) where the
    liked papers' semantic evidence (``liked_share`` x the semantic part) is above their
    lexical part, else the nearest by TF-IDF (``scores.nearest_liked``)."""
    lexical = scores.nearest_liked
    if lexical is None or by_cosine is None or "semantic" not in scores.parts:
        return lexical
    like = scores.parts.get("like", np.zeros(len(lexical)))
    semantic = np.round(liked_share * scores.parts["semantic"], 9)
    use = (semantic > np.round(like, 9)) & (by_cosine >= 0)
    return np.where(use, by_cosine, lexical).astype(np.int64)


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
    empty breakdown (``digestbot explain`` gives any paper's full breakdown). Every paper
    carries ``direct`` (``direct_evidence``), so ``pick`` judges a light one as a full one.
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
    direct = direct_evidence(scores, ordered).tolist()
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
            ScoredPaper(
                paper=papers[pos],
                score=total,
                why=text,
                matched=matched,
                breakdown=detail,
                direct=direct[k],
            )
        )
    return out


@dataclass(frozen=True)
class Listing:
    """A whole ranking as columns, best first: what ``rank --json`` prints, built without
    one ``Paper`` or ``ScoredPaper`` object per paper (100,000 of them cost seconds)."""

    ids: list[str]
    titles: list[str]
    scores: list[float]
    whys: list[str]
    matched: list[tuple[str, ...]]
    breakdowns: list[dict[str, float]]  # empty past the detailed head
    detailed: int | None = None  # how many rows the head holds (None: any row may have one)
    # past the head: each row's case (an index into ``cases``: its why and matched terms)
    tail_cases: list[int] | None = None
    cases: list[tuple[str, tuple[str, ...]]] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def as_dicts(self) -> list[dict[str, object]]:
        """The same shape as ``models.scored_as_dict``."""
        return [
            {
                "id": pid,
                "title": title,
                "score": score,
                "why": text,
                "matched": list(matched),
                "breakdown": dict(detail),
            }
            for pid, title, score, text, matched, detail in zip(
                self.ids,
                self.titles,
                self.scores,
                self.whys,
                self.matched,
                self.breakdowns,
                strict=True,
            )
        ]

    def as_json(self) -> str:
        """Compact JSON, byte for byte ``json.dumps(self.as_dicts(), ensure_ascii=False,
        separators=(",", ":"))``, written a column at a time."""
        enc = encode_basestring
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

        def rest(text: str, labels: tuple[str, ...], detail: dict[str, float]) -> str:
            listed = ",".join(map(enc, labels))
            shown = dumps(detail) if detail else "{}"
            return f',"why":{enc(text)},"matched":[{listed}],"breakdown":{shown}}}'

        n = len(self.ids)
        if not n:
            return "[]"
        head = n if self.detailed is None else min(self.detailed, n)
        tails = [
            rest(text, labels, detail)
            for text, labels, detail in zip(
                self.whys[:head], self.matched[:head], self.breakdowns[:head], strict=True
            )
        ]
        # papers past the detailed head (most of them) have no breakdown: a tail per case
        if self.cases is not None and self.tail_cases is not None:
            by_case = [rest(text, labels, {}) for text, labels in self.cases]
            tails += map(by_case.__getitem__, self.tail_cases)
        else:
            keys = list(zip(self.whys[head:], self.matched[head:], strict=True))
            shared = {key: rest(*key, {}) for key in set(keys)}
            tails += map(shared.__getitem__, keys)
        # one C-level pass: no Python code runs per paper
        pieces = chain.from_iterable(
            zip(
                repeat('{"id":'),
                map(enc, self.ids),
                repeat(',"title":'),
                map(enc, self.titles),
                repeat(',"score":'),
                map(repr, self.scores),
                tails,
                repeat(","),
            )
        )
        text = "".join(pieces)
        return "[" + text[:-1] + "]"


def listing(
    scores: ProfileScores,
    ordered: np.ndarray,
    *,
    ids: Sequence[str],
    titles: Sequence[str],
    liked_title: Callable[[int], str],
    detailed: int,
) -> Listing:
    """``assemble`` for rows already in order, as columns: the best ``detailed`` rows get
    every matched term and the breakdown, the rest their strongest term, and their
    ``why`` is written once per distinct (state, term, liked paper) combination."""
    ordered = np.asarray(ordered, dtype=np.int64)
    n = len(ordered)
    totals = np.round(scores.total[ordered], 6)
    head = min(detailed, n)
    whys: list[str] = []
    matched: list[tuple[str, ...]] = []
    breakdowns: list[dict[str, float]] = []
    empty: tuple[str, ...] = ()
    values = scores.features_at(ordered[:head])
    for k, row in enumerate(ordered[:head].tolist()):
        total = float(totals[k])
        labels = matched_labels(scores, row, values[k]) if total > 0 else empty
        whys.append(
            why_text(
                excluded=bool(scores.excluded[row]),
                disliked=bool(scores.disliked[row]),
                total=total,
                like=float(scores.parts["like"][row]) if "like" in scores.parts else 0.0,
                profile=float(scores.parts["profile"][row]) if "profile" in scores.parts else 0.0,
                nearest=(
                    int(scores.nearest_liked[row]) if scores.nearest_liked is not None else None
                ),
                matched=labels,
                liked_title=liked_title,
            )
        )
        matched.append(labels)
        breakdowns.append(breakdown(scores, row, values[k]) if total > 0 else {})
    tail = ordered[head:]
    tail_cases: list[int] = []
    cases: list[tuple[str, tuple[str, ...]]] = []
    if len(tail):
        tail_cases, cases = _quick_whys(scores, tail, totals[head:], liked_title=liked_title)
        whys += map([text for text, _ in cases].__getitem__, tail_cases)
        matched += map([labels for _, labels in cases].__getitem__, tail_cases)
        breakdowns += [{}] * len(tail)
    rows = ordered.tolist()
    return Listing(
        ids=list(map(ids.__getitem__, rows)),
        titles=list(map(titles.__getitem__, rows)),
        scores=totals.tolist(),
        whys=whys,
        matched=matched,
        breakdowns=breakdowns,
        detailed=head,
        tail_cases=tail_cases,
        cases=cases,
    )


def _quick_whys(
    scores: ProfileScores,
    rows: np.ndarray,
    totals: np.ndarray,
    *,
    liked_title: Callable[[int], str],
) -> tuple[list[int], list[tuple[str, tuple[str, ...]]]]:
    """``why_text`` and the strongest matched term for many rows, one call per distinct case:
    each row's case, and the cases (why, matched terms)."""
    n = len(rows)
    positive = totals > 0
    label = np.full(n, -1, dtype=np.int64)
    if positive.any():
        label[positive] = strongest_feature(scores, rows[positive])
    zeros = np.zeros(n)
    like = scores.parts["like"][rows] if "like" in scores.parts else zeros
    profile = scores.parts["profile"][rows] if "profile" in scores.parts else zeros
    has_nearest = scores.nearest_liked is not None
    nearest = scores.nearest_liked[rows] if scores.nearest_liked is not None else np.zeros(n, int)
    state = np.where(
        scores.excluded[rows], 0, np.where(scores.disliked[rows], 1, np.where(positive, 3, 2))
    )
    like_first = (like > profile) & has_nearest
    like_after = (like > 0) & ~like_first & has_nearest
    uses_nearest = like_first | like_after
    # one integer per case: state, strongest term, liked paper named, where it is named
    n_labels = len(scores.features) + 1
    n_liked = len(scores.liked_rows) + 1
    positive_state = state == 3
    key = state.astype(np.int64)
    key = key * n_labels + np.where(positive_state, label, -1) + 1
    key = key * n_liked + np.where(positive_state & uses_nearest, nearest, -1) + 1
    key = key * 3 + np.where(positive_state, like_first.astype(np.int64) + 2 * like_after, 0)
    codes, inverse = np.unique(key, return_inverse=True)
    cases = []
    for code in codes.tolist():
        code, how = divmod(code, 3)
        code, near = divmod(code, n_liked)
        st, lab = divmod(code, n_labels)
        cases.append((st, lab - 1, near - 1, how))
    labels = [(f.label,) for f in scores.features]
    out: list[tuple[str, tuple[str, ...]]] = []
    for st, lab, near, how in cases:
        matched = labels[lab] if lab >= 0 else ()
        text = why_text(
            excluded=st == 0,
            disliked=st == 1,
            total=1.0 if st == 3 else 0.0,
            like=1.0 if how else 0.0,
            profile=0.0 if how == 1 else 1.0,
            nearest=near if near >= 0 else None,
            matched=matched,
            liked_title=liked_title,
        )
        out.append((text, matched))
    return np.asarray(inverse).reshape(-1).tolist(), out
