"""Score every indexed paper for one profile: profile words, liked papers, feedback, priors.

Each evidence source is scaled to [0, 1] by its best paper (CombSUM of
max-normalised scores) and mixed with fixed weights:

1. the profile's words (keyword phrases, description words) by BM25F; the words of
   a multi-word keyword whose phrase is absent count more where they stand within
   ``PROXIMITY_WINDOW`` words of each other (checked in the best ``PROXIMITY_ROWS``);
2. liked papers (``like:`` and 👍): each becomes a TF-IDF term vector scored by
   BM25, combined by their mean less half their spread; a profile without words
   of its own also searches for its liked papers' shared distinctive phrases
   (``liked_terms``) as keywords, at ``LIKED_PHRASES_WEIGHT``;
3. pseudo-relevance feedback: the strongest terms of the top hits of 1+2 are
   searched for too (Rocchio with beta = ``EXPANSION_WEIGHT``), which finds
   papers that use other words for the same topic;
4. 👎 papers push their look-alikes down (Rocchio's gamma); a 👎 or excluded
   paper scores 0;
5. upvotes and recency add small configurable priors to papers that matched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache

import numpy as np

from digestbot.config import Profile, RankingSettings
from digestbot.ranking.expansion import TermVector, centroid, paper_vector, vectors_centroid
from digestbot.ranking.lexical import Floats, LexicalIndex, weighted_terms
from digestbot.ranking.liked_terms import liked_phrases
from digestbot.ranking.query import (
    Feature,
    close_together,
    description_features,
    excluded_rows,
    keyword_features,
)
from digestbot.ranking.semantic import fuse_available, scaled_partial
from digestbot.ranking.text import Mined, column, columns, terms, words

TextsOf = Callable[[Sequence[int]], list[tuple[str, str]]]  # index rows -> (title, abstract)

LIKE_TERMS = 120  # strongest terms kept from a liked paper
LIKE_MEAN = 1.0  # liked papers combine by their mean (Rocchio centroid); 0 = by max
EXPANSION_DOCS = 8  # top hits used for pseudo-relevance feedback
EXPANSION_TERMS = 40
# when the profile's own words matched: a few keywords are a short query, which a broader
# expansion serves better (liked papers already bring LIKE_TERMS terms each, and the
# phrases found in them for a profile without words keep the narrower expansion)
WORDS_EXPANSION_DOCS = 10
WORDS_EXPANSION_TERMS = 60
EXPANSION_WEIGHT = 0.6
DISLIKE_WEIGHT = 0.2
SEMANTIC_WEIGHT = 1.0
LIKE_SPREAD = 0.5  # liked papers: mean less this x spread, so a paper near all of them wins
PROXIMITY_ROWS = 30  # best-scoring papers checked for a keyword's words close together
PROXIMITY_WINDOW = 3  # content words
PROXIMITY_BONUS = 0.5  # words of a keyword found close: their evidence x (1 + this)
LIKED_LEXICAL = 50  # liked papers scored one by one (each a query on the whole store), at most
LIKED_PHRASES_WEIGHT = 0.5  # the liked papers' phrases (profiles without words of their own)
LIKED_SCATTER = 0.5  # their words found apart: this x the phrase's weight, shared
SEMANTIC_SCATTER = 0.5  # SCATTER_WEIGHT when there is semantic evidence too


@dataclass
class ProfileScores:
    """Per index row: the total and its parts (all arrays have ``index.n_rows`` entries)."""

    total: Floats
    parts: dict[str, Floats]
    features: list[Feature]
    raw: Floats  # features x rows: each feature's weighted BM25 evidence
    share: Floats  # per row: how raw evidence scales into the total
    excluded: np.ndarray
    disliked: np.ndarray
    liked_rows: list[int] = field(default_factory=list)
    nearest_liked: np.ndarray | None = None  # row -> position in liked_rows
    expansion_terms: int = 0

    def features_at(self, rows: np.ndarray | Sequence[int]) -> Floats:
        """rows x features: each feature's part of the total."""
        picked = np.asarray(rows, dtype=np.int64)
        return np.asarray(self.raw[:, picked].T * self.share[picked, None], dtype=np.float64)


def _scaled(values: Floats, *, skip: np.ndarray | None = None) -> tuple[Floats, float]:
    pool = values if skip is None or not skip.any() else values[~skip]
    top = float(pool.max()) if len(pool) else 0.0
    if top <= 0:
        return np.zeros_like(values), 0.0
    return values / top, top


def score_profile(
    index: LexicalIndex,
    profile: Profile,
    *,
    texts: TextsOf,
    liked_rows: Sequence[int] = (),
    disliked_rows: Sequence[int] = (),
    settings: RankingSettings,
    now: datetime,
    semantic: Floats | None = None,
    mined: Mined = (),
) -> ProfileScores:
    """``mined``: the store's papers' own acronym definitions for the profile's phrases
    (``ranking.acronyms.mined_expansions``)."""
    n = index.n_rows
    dead = ~index.live
    liked = np.zeros(n, dtype=bool)
    liked[list(liked_rows)] = True
    disliked = np.zeros(n, dtype=bool)
    disliked[list(disliked_rows)] = True
    excluded = excluded_rows(index, profile.exclude, mined)
    out_of_play = dead | excluded | disliked

    # the description's document frequencies in one pass (each word is then a look-up)
    index.document_frequency(np.asarray(columns(terms(words(profile.description)))))
    # with embeddings, a keyword's words found apart count for less: the semantic evidence
    # already rewards a paper on the keyword's topic that words it otherwise
    if semantic is not None and not np.nan_to_num(semantic).any():
        semantic = None  # no paper has semantic evidence yet (no vector): rank lexically
    scatter = SEMANTIC_SCATTER if semantic is not None else None  # None: query.SCATTER_WEIGHT
    features = keyword_features(profile, scatter=scatter, mined=mined) + description_features(
        profile, index, mined
    )
    text_weight = 1.0
    liked_texts = _warmed(index, texts(list(liked_rows))) if len(liked_rows) else []
    # a keyword of stop words or of another script (text is folded to ASCII) searches for nothing
    own_words = any(alternative for f in features for alternative in f.alternatives)
    if not own_words and liked_texts:
        features = _liked_features(profile, index, liked_texts)
        text_weight = LIKED_PHRASES_WEIGHT
    index.prefetch(_columns_of(features))  # every term's postings in one pass
    raw = np.zeros((len(features), n))
    for j, feature in enumerate(features):
        raw[j] = feature.weight * feature.value(index)
    summed = raw.sum(axis=0) if features else np.zeros(n)
    _proximity(index, features, raw, summed, texts=texts, skip=out_of_play)
    text, text_top = _scaled(summed, skip=dead)

    sources: list[tuple[str, float, Floats]] = []
    if text_top > 0:
        sources.append(("profile", text_weight, text))
    nearest: np.ndarray | None = None
    if len(liked_rows):
        like, nearest = _like_scores(index, liked_texts, skip=dead | liked)
        sources.append(("like", 1.0, like))
    if semantic is not None:
        # NaN: no vector yet; such a paper is scored on its other evidence (fuse_available)
        sources.append(("semantic", SEMANTIC_WEIGHT, scaled_partial(semantic, skip=dead)))
    parts: dict[str, Floats] = fuse_available(sources)
    base = np.zeros(n)
    for values in parts.values():
        base += values

    expansion_terms = 0
    candidates = np.where(out_of_play, 0.0, base)
    if own_words and text_top > 0:
        n_docs, n_terms = WORDS_EXPANSION_DOCS, WORDS_EXPANSION_TERMS
    else:
        n_docs, n_terms = EXPANSION_DOCS, EXPANSION_TERMS
    top = _top_rows(candidates, index.pks, n_docs)
    if len(top) >= 2:
        vector = centroid(
            index,
            _warmed(index, texts(top.tolist())),
            weights=candidates[top].tolist(),
            top_terms=n_terms,
        )
        expansion_terms = len(vector.cols)
        expanded, _ = _scaled(vector.score(index), skip=dead)
        scale = 1.0 / (1.0 + EXPANSION_WEIGHT)
        parts = {k: v * scale for k, v in parts.items()}
        parts["expansion"] = expanded * EXPANSION_WEIGHT * scale
        base = base * scale + parts["expansion"]

    if len(disliked_rows):
        vector = centroid(index, _warmed(index, texts(list(disliked_rows))), top_terms=LIKE_TERMS)
        pushed = np.minimum(_scaled(vector.score(index), skip=dead | disliked)[0], 1.0)
        parts["dislike"] = -DISLIKE_WEIGHT * pushed * (base > 0)
        base = np.maximum(base + parts["dislike"], 0.0)

    base = np.where(out_of_play, 0.0, base)
    matched = base > 0
    key = (settings.upvote_weight, settings.recency_weight, settings.recency_half_life_days)
    cached = index.memo.get(("priors", key, now.date()))
    priors = cached if cached is not None else _priors(index, settings=settings, now=now)
    index.memo[("priors", key, now.date())] = priors
    for name, values in priors.items():
        parts[name] = np.where(matched, values, 0.0)
        base = base + parts[name]

    if "profile" in parts:
        share = parts["profile"] / np.maximum(text * text_top, 1e-12)
    else:
        share = np.zeros(n)
    return ProfileScores(
        total=base,
        parts=parts,
        features=features,
        raw=raw,
        share=share,
        excluded=excluded,
        disliked=disliked,
        liked_rows=list(liked_rows),
        nearest_liked=nearest,
        expansion_terms=expansion_terms,
    )


def _proximity(
    index: LexicalIndex,
    features: Sequence[Feature],
    raw: Floats,
    summed: Floats,
    *,
    texts: TextsOf,
    skip: np.ndarray,
) -> None:
    """Among the best ``PROXIMITY_ROWS`` papers (by the profile's words) holding any
    back-off word, those holding every word of a multi-word keyword but not its phrase:
    raise those words' evidence where they occur within ``PROXIMITY_WINDOW`` content
    words of each other (in the title or the abstract).

    Changes ``raw`` and its column sums ``summed`` in place; reads only the candidate
    papers' texts and touches whole columns only to find the candidates."""
    by_keyword: dict[tuple[str, ...], list[int]] = {}
    for j, feature in enumerate(features):
        if feature.near:
            by_keyword.setdefault(feature.near, []).append(j)
    if not by_keyword or PROXIMITY_BONUS <= 0:
        return
    groups = {near: np.asarray(js, dtype=np.int64) for near, js in by_keyword.items()}
    evidence = np.zeros(len(summed), dtype=bool)
    for js in groups.values():
        for j in js.tolist():
            evidence |= raw[j] > 0
    pool = np.flatnonzero(evidence & ~skip)
    rows = pool[_top_rows(summed[pool], index.pks[pool], PROXIMITY_ROWS)]
    # per keyword, the rows holding all its words apart: only those texts are read
    candidates = {
        near: rows[(raw[np.ix_(js, rows)] > 0).all(axis=0)] for near, js in groups.items()
    }
    wanted = sorted({int(r) for found in candidates.values() for r in found.tolist()})
    if not wanted:
        return
    streams = {
        row: (_content_words(title), _content_words(abstract))
        for row, (title, abstract) in zip(wanted, texts(wanted), strict=True)
    }
    raised: set[int] = set()
    for near, found in candidates.items():
        firsts = [{written.split(" ")[0] for written in unit.split("|")} for unit in near]
        close = [
            int(r)
            for r in found.tolist()
            if any(
                # a text lacking a unit's every first word cannot hold it: no need to look
                all(not held.isdisjoint(first) for first in firsts)
                and close_together(stream, near, PROXIMITY_WINDOW)
                for stream, held in streams[int(r)]
            )
        ]
        if close:
            raw[np.ix_(groups[near], np.asarray(close, dtype=np.int64))] *= 1.0 + PROXIMITY_BONUS
            raised.update(close)
    if raised:
        cols = np.asarray(sorted(raised), dtype=np.int64)
        summed[cols] = raw[:, cols].sum(axis=0)


@lru_cache(maxsize=2048)
def _content_words(text: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """A text's content words in order (``words``) and as a set, remembered per text: the
    best papers of one profile are often the best of the next one's too."""
    found = tuple(words(text)[0])
    return found, frozenset(found)


def _warmed(index: LexicalIndex, texts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The texts, after looking up the document frequencies of all their terms in one
    pass (each paper's vector then finds them cached)."""
    cols: set[int] = set()
    for title, abstract in texts:
        cols.update(weighted_terms(title, abstract)[0])
    index.document_frequency(np.asarray(sorted(cols), dtype=np.int64))
    return texts


def _columns_of(features: Sequence[Feature]) -> list[int]:
    return [
        column(term)
        for feature in features
        for terms in (*feature.alternatives, *feature.unless)
        for term in terms
    ]


def _top_rows(values: Floats, pks: np.ndarray, k: int) -> np.ndarray:
    """The k rows with the highest positive values, best first (ties: lower pk first)."""
    if k <= 0 or not len(values):
        return np.zeros(0, dtype=np.int64)
    pool = np.flatnonzero(values > 0)  # only these can be chosen: partition no more
    if len(pool) > k:
        positive = values[pool]
        if len(positive) > 16 * k:
            # the k-th best of every 8th value is no better than the k-th best of all:
            # only the values reaching it are partitioned
            sample = positive[::8]
            low = np.partition(sample, len(sample) - k)[len(sample) - k]
            pool, positive = pool[positive >= low], positive[positive >= low]
        cut = np.partition(positive, len(positive) - k)[len(positive) - k]
        pool = pool[positive >= cut]
    return pool[np.lexsort((pks[pool], -values[pool]))][:k]


def _liked_features(
    profile: Profile, index: LexicalIndex, liked_texts: list[tuple[str, str]]
) -> list[Feature]:
    """The liked papers' shared distinctive phrases as keyword features (kind ``liked``)."""
    phrases = liked_phrases(index, liked_texts)
    described = profile.model_copy(update={"keywords": dict.fromkeys(phrases, 1.0)})
    features = keyword_features(described, scatter=LIKED_SCATTER)
    # a phrase's words found apart: no bonus for standing close (measured lower)
    return [replace(f, kind="liked", near=()) for f in features]


def _like_scores(
    index: LexicalIndex, liked_texts: list[tuple[str, str]], *, skip: np.ndarray
) -> tuple[Floats, np.ndarray]:
    """Mean similarity to the liked papers (each max-scaled) less ``LIKE_SPREAD`` x spread;
    and per row the position (in ``liked_texts``) of the liked paper it is most like.

    Each liked paper is one query on the whole store: beyond ``LIKED_LEXICAL`` of them
    (years of 👍) only those nearest their centroid are scored."""
    vectors = [paper_vector(index, title, abstract) for title, abstract in liked_texts]
    chosen = representative_liked(index, liked_texts, limit=LIKED_LEXICAL, vectors=vectors)
    per_paper = []
    for position in chosen:
        vector: TermVector = vectors_centroid([vectors[position]], top_terms=LIKE_TERMS)
        per_paper.append(np.minimum(_scaled(vector.score(index), skip=skip)[0], 1.0))
    stack = np.vstack(per_paper)
    like = LIKE_MEAN * stack.mean(axis=0) + (1.0 - LIKE_MEAN) * stack.max(axis=0)
    like = np.maximum(like - LIKE_SPREAD * stack.std(axis=0), 0.0)
    nearest = np.asarray(chosen, dtype=np.int64)[stack.argmax(axis=0)]
    return np.minimum(_scaled(like, skip=skip)[0], 1.0), nearest


def representative_liked(
    index: LexicalIndex,
    liked_texts: Sequence[tuple[str, str]],
    *,
    limit: int,
    vectors: Sequence[dict[int, float]] | None = None,
) -> list[int]:
    """Positions of the ``limit`` liked papers nearest the centroid of all of them (TF-IDF
    cosine; ties: the earlier first), in their order; all of them when there are no more.
    ``vectors``: the papers' ``paper_vector`` when already built."""
    if len(liked_texts) <= limit:
        return list(range(len(liked_texts)))
    if vectors is None:
        vectors = [paper_vector(index, title, abstract) for title, abstract in liked_texts]
    centre: dict[int, float] = {}
    for vector in vectors:
        for col, value in vector.items():
            centre[col] = centre.get(col, 0.0) + value
    closeness = np.asarray(
        [sum(value * centre[col] for col, value in vector.items()) for vector in vectors]
    )
    best = np.lexsort((np.arange(len(vectors)), -closeness))[:limit]
    return sorted(best.tolist())


def _priors(index: LexicalIndex, *, settings: RankingSettings, now: datetime) -> dict[str, Floats]:
    out: dict[str, Floats] = {}
    if settings.upvote_weight > 0 and len(index.upvotes):
        votes = np.log1p(np.maximum(index.upvotes, 0))
        top = float(votes.max())
        if top > 0:
            out["upvotes"] = settings.upvote_weight * votes / top
    if settings.recency_weight > 0 and len(index.published):
        age = np.maximum(now.date().toordinal() - index.published, 0)
        fresh = np.power(0.5, age / settings.recency_half_life_days)
        out["recency"] = settings.recency_weight * np.where(index.published > 0, fresh, 0.0)
    return out
