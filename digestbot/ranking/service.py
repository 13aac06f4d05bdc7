"""Rank the whole store for a profile on the persisted index.

Scores come from the index; the store is asked only for what the answer shows:
ids and titles of every paper, full rows for the best ``FULL_ROWS``, texts of
the liked and top papers, and the profile's 👍/👎 votes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from digestbot.config import Profile, RankingSettings
from digestbot.errors import ConfigError
from digestbot.models import ScoredPaper
from digestbot.ranking.acronyms import lookup_keys, mined_expansions
from digestbot.ranking.explain import (
    Listing,
    assemble,
    listing,
    nearest_by_evidence,
    order_best_first,
    order_rows,
)
from digestbot.ranking.lexical import Floats, LexicalIndex
from digestbot.ranking.persist import sync_index
from digestbot.ranking.scorer import ProfileScores, score_profile
from digestbot.ranking.semantic import (
    AUTO,
    get_embedder,
    liked_share,
    nearest_liked,
    ready_vectors,
    semantic_scores,
)
from digestbot.ranking.text import Mined, static_acronym_keys
from digestbot.store import SqlStore
from digestbot.store.acronyms import load_definitions
from digestbot.store.feedback import load_feedback
from digestbot.store.ranking import (
    load_index_documents_by_pk,
    load_listing,
    load_papers_by_pk,
    load_pks,
    load_texts,
    pks_of_ids,
    resolve_paper_pks,
)
from digestbot.store.slack import personal_user

log = logging.getLogger(__name__)

# papers returned with every field (>= the largest top_k); the rest: id, title, upvotes
FULL_ROWS = 1000


def open_index(store: SqlStore, directory: Path | None) -> LexicalIndex:
    """The persisted index brought up to date, or an in-memory one when there is no folder."""
    if directory is not None:
        return sync_index(store, directory)
    return LexicalIndex.build(load_index_documents_by_pk(store, load_pks(store)))


def mined_acronyms(store: SqlStore, profile: Profile) -> Mined:
    """The acronyms the store's papers define for the profile's keywords, description
    words and exclusions, that a query may expand (``ranking.acronyms``): one query."""
    keys = lookup_keys((*profile.keywords, *profile.exclude), (profile.description,))
    if not keys:
        return ()
    with store.transaction() as conn:
        found = load_definitions(conn, keys)
    return mined_expansions(found, static=static_acronym_keys())


def profile_votes(store: SqlStore, profile: Profile) -> tuple[list[int], list[int]]:
    """(👍 pks, 👎 pks) recorded for the profile; a personal profile's are its person's."""
    user = personal_user(profile.name)
    if user is not None:
        votes = load_feedback(store, subject_kind="user", subject=user)
    else:
        votes = load_feedback(store, subject_kind="profile", subject=profile.name)
    pks = pks_of_ids(store, [v.paper_id for v in votes])
    ups = [pks[v.paper_id] for v in votes if v.value > 0 and v.paper_id in pks]
    downs = [pks[v.paper_id] for v in votes if v.value < 0 and v.paper_id in pks]
    return ups, downs


class RowMap(Mapping[int, int]):
    """pk -> live row of an index, built on first use."""

    def __init__(self, index: LexicalIndex) -> None:
        self.index = index

    def __getitem__(self, pk: int) -> int:
        return self.index.row_of_pk()[pk]

    def __contains__(self, pk: object) -> bool:
        return pk in self.index.row_of_pk()

    def __iter__(self) -> Iterator[int]:
        return iter(self.index.row_of_pk())

    def __len__(self) -> int:
        return self.index.n_live


def score_store(
    store: SqlStore,
    index: LexicalIndex,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings,
    semantic: Floats | None = None,
) -> tuple[ProfileScores, Mapping[int, int], list[int]]:
    """Scores per index row, the pk -> row map, and the liked rows (like: then 👍).

    The map is built only when read (100,000 entries cost ~15 ms a profile).
    """
    row_of = RowMap(index)
    found = resolve_paper_pks(store, profile.like)
    for name in profile.like:
        if name not in found:
            log.warning("profile %s: liked paper %r is not in the store", profile.name, name)
    liked_pks = list(dict.fromkeys(found.values()))
    ups, downs = profile_votes(store, profile)
    liked_pks += [pk for pk in ups if pk not in liked_pks]
    liked_pks = [pk for pk in liked_pks if pk not in downs]
    liked_rows = [r for r in index.rows_of(liked_pks).tolist() if r >= 0]
    disliked_rows = [r for r in index.rows_of(downs).tolist() if r >= 0]

    read: dict[int, tuple[str, str]] = {}  # this call's texts: the top papers are read twice

    def texts(rows: Sequence[int]) -> list[tuple[str, str]]:
        pks = [int(index.pks[r]) for r in rows]
        missing = [pk for pk in dict.fromkeys(pks) if pk not in read]
        found = load_texts(store, missing)
        read.update(dict.fromkeys(missing, ("", "")) | found)
        return [read[pk] for pk in pks]

    by_cosine = None
    if semantic is None:
        semantic, by_cosine = _semantic(store, index, profile, liked_rows, settings, now)
    scores = score_profile(
        index,
        profile,
        texts=texts,
        liked_rows=liked_rows,
        disliked_rows=disliked_rows,
        settings=settings,
        now=now,
        semantic=semantic,
        mined=mined_acronyms(store, profile),
    )
    if by_cosine is not None:
        nearest = nearest_by_evidence(scores, by_cosine, liked_share=liked_share(profile))
        scores = replace(scores, nearest_liked=nearest)
    return scores, row_of, liked_rows


def _semantic(
    store: SqlStore,
    index: LexicalIndex,
    profile: Profile,
    liked_rows: list[int],
    settings: RankingSettings,
    now: datetime,
) -> tuple[Floats | None, np.ndarray | None]:
    """The semantic evidence per row, and per row the liked paper nearest by embedding
    (``nearest_liked``; None without liked papers); (None, None) without vectors."""
    embedder = get_embedder(settings)
    if embedder is None:
        return None, None
    try:
        ready = ready_vectors(
            store,
            embedder,
            settings=settings,
            row_of=index.row_of_pk(),
            n_rows=index.n_rows,
            now=now,
            layout=index.fingerprint(),
        )
        if ready is None:
            return None, None
        evidence = semantic_scores(
            embedder,
            ready.vectors,
            profile,
            liked_rows=liked_rows,
            has=ready.has,
            store=store,
            titles=ready.titles,
        )
        nearest = nearest_liked(ready.vectors, liked_rows, has=ready.has) if liked_rows else None
        return evidence, nearest
    except ConfigError as exc:
        if settings.embedding_model != AUTO:
            raise
        # ``auto`` found the packages but the model would not load: rank lexically
        log.warning("semantic ranking unavailable (%s): ranking lexically", exc)
        return None, None


@dataclass(frozen=True)
class Ranking:
    """Papers best first (``papers``), and what scored them: ``detail`` gives any of them
    the full ``why``, matched terms and breakdown that a light paper (past the detailed
    head) lacks, without ranking again."""

    papers: list[ScoredPaper]
    scores: ProfileScores
    ids: list[str]  # the papers' ids and index rows, in the order they were listed
    rows: list[int]
    liked_title: Callable[[int], str]

    def detail(self, items: Sequence[ScoredPaper]) -> list[ScoredPaper]:
        """``items`` (some of ``papers``) in their order, each light one with its full
        ``why``, matched terms and breakdown, as ``assemble`` gives the detailed head."""
        light = [k for k, item in enumerate(items) if item.score > 0 and not item.breakdown]
        if not light:
            return list(items)
        wanted = {items[k].paper.id for k in light}
        row_of = {pid: row for pid, row in zip(self.ids, self.rows, strict=True) if pid in wanted}
        full = assemble(
            self.scores,
            [row_of[items[k].paper.id] for k in light],
            [items[k].paper for k in light],
            liked_title=self.liked_title,
            order=list(range(len(light))),
        )
        out = list(items)
        for k, item in zip(light, full, strict=True):
            out[k] = item
        return out


def rank_store(
    store: SqlStore,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings,
    index_dir: Path | None,
    limit: int | None = None,
    detailed: int = FULL_ROWS,
) -> list[ScoredPaper]:
    """Every paper best first (the best ``detailed`` with full papers and breakdowns), or
    only the best ``limit`` (then only those are read); ``rank_pool`` ranks some papers.

    The reference for ``rank_listing``, which lists every paper much faster.
    """
    index = open_index(store, index_dir)
    scores, row_of, liked_rows = score_store(store, index, profile, now=now, settings=settings)
    liked_title = _liked_titles(store, index, liked_rows)
    if limit is not None:
        top = _best(store, index, scores, limit=limit, liked_title=liked_title)
        if top is not None:
            return top
    ranked = _ranking(store, scores, row_of, liked_title, only=None, detailed=detailed).papers
    return ranked if limit is None else ranked[:limit]


def rank_pool(
    store: SqlStore,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings,
    index_dir: Path | None,
    only: Collection[int],
    detailed: int = FULL_ROWS,
) -> Ranking:
    """``rank_store`` of the papers of the pks ``only`` (scored against the whole store, as
    always; the best ``detailed`` of them carry full papers and breakdowns), kept with their
    scores so that any
    of them can be given its full ``why`` later (``Ranking.detail``: the few a digest picks
    from deep in a large pool)."""
    index = open_index(store, index_dir)
    scores, row_of, liked_rows = score_store(store, index, profile, now=now, settings=settings)
    liked_title = _liked_titles(store, index, liked_rows)
    return _ranking(store, scores, row_of, liked_title, only=only, detailed=detailed)


def _liked_titles(
    store: SqlStore, index: LexicalIndex, liked_rows: list[int]
) -> Callable[[int], str]:
    """The title of the ``k``-th liked paper (a ``why`` names it)."""
    liked_titles = load_texts(store, [int(index.pks[r]) for r in liked_rows])

    def liked_title(k: int) -> str:
        return liked_titles.get(int(index.pks[liked_rows[k]]), ("", ""))[0]

    return liked_title


def _ranking(
    store: SqlStore,
    scores: ProfileScores,
    row_of: Mapping[int, int],
    liked_title: Callable[[int], str],
    *,
    only: Collection[int] | None,
    detailed: int,
) -> Ranking:
    """Every paper (or those of the pks ``only``) best first, the best ``detailed`` read
    in full and with their breakdowns."""
    wanted = row_of if only is None else {pk for pk in only if pk in row_of}
    listing = [(pk, paper) for pk, paper in load_listing(store) if pk in wanted]
    pks = [pk for pk, _ in listing]
    rows = [row_of[pk] for pk in pks]
    papers = [paper for _, paper in listing]
    ids = [p.id for p in papers]
    order = order_rows(
        scores,
        np.asarray(rows, dtype=np.int64),
        upvotes=np.asarray([p.upvotes for p in papers], dtype=np.int64),
        ids=ids,
    )
    best = [pks[pos] for pos in order[:detailed]]
    full = load_papers_by_pk(store, best)
    for pos in order[:detailed]:
        papers[pos] = full.get(pks[pos], papers[pos])
    ranked = assemble(scores, rows, papers, liked_title=liked_title, detailed=detailed, order=order)
    return Ranking(ranked, scores, ids, rows, liked_title)


def rank_listing(
    store: SqlStore,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings,
    index_dir: Path | None,
    detailed: int = FULL_ROWS,
) -> Listing:
    """Every paper best first as columns (``digestbot rank`` without ``--limit``).

    Ids, titles and upvotes come from the index, so the database is asked only for
    the profile's likes and votes and the texts of a few top papers.
    """
    index = open_index(store, index_dir)
    scores, _, liked_rows = score_store(store, index, profile, now=now, settings=settings)
    ids, titles = index.labels()
    live = np.flatnonzero(index.live)
    order = order_best_first(
        scores.total[live],
        upvotes=index.upvotes[live],
        ids=list(map(ids.__getitem__, live.tolist())),
    )
    return listing(
        scores,
        live[order],
        ids=ids,
        titles=titles,
        liked_title=lambda k: titles[liked_rows[k]],
        detailed=detailed,
    )


def _best(
    store: SqlStore,
    index: LexicalIndex,
    scores: ProfileScores,
    *,
    limit: int,
    liked_title: Callable[[int], str],
) -> list[ScoredPaper] | None:
    """The best ``limit`` papers read by pk; None when ties make the cut too wide."""
    live = np.flatnonzero(index.live)
    if not len(live):
        return []
    totals = np.round(scores.total[live], 6)
    k = min(limit, len(live))
    cut = np.partition(totals, len(totals) - k)[len(totals) - k]
    candidates = live[totals >= cut]  # every paper that could tie into the best ``limit``
    if len(candidates) > 4 * limit + 1000:
        return None
    papers = load_papers_by_pk(store, [int(index.pks[r]) for r in candidates])
    rows = [int(r) for r in candidates if int(index.pks[r]) in papers]
    chosen = [papers[int(index.pks[r])] for r in rows]
    return assemble(scores, rows, chosen, liked_title=liked_title)[:limit]
