"""The order of things: load papers, rank them for a profile, make a digest.

This module is the only one that knows the order; each step lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path

from digestbot.config import Profile, RankingSettings
from digestbot.models import Digest, ScoredPaper
from digestbot.ranking import pick
from digestbot.ranking.persist import default_index_dir
from digestbot.ranking.service import Ranking, rank_pool, rank_store
from digestbot.render import render_markdown
from digestbot.store import SqlStore


def rank_profile(
    store: SqlStore,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings | None = None,
    limit: int | None = None,
) -> list[ScoredPaper]:
    """Every stored paper (or the best ``limit``) ranked for the profile, on the persisted
    index (``rank_candidates``: some papers).

    The index lives in ``ranking.index_dir`` (default: ``<database file>.index``)
    and is brought up to date first; the profile's 👍/👎 feedback is applied.
    """
    settings = settings or RankingSettings()
    index_dir = settings.index_dir or default_index_dir(store)
    return rank_store(store, profile, now=now, settings=settings, index_dir=index_dir, limit=limit)


def rank_candidates(
    store: SqlStore,
    profile: Profile,
    *,
    now: datetime,
    settings: RankingSettings,
    only: Collection[int],
) -> Ranking:
    """``rank_profile`` of the pks ``only`` (a digest's candidates), kept with their scores:
    ``Ranking.detail`` gives the few picked from deep in the ranking their full ``why``."""
    index_dir = settings.index_dir or default_index_dir(store)
    return rank_pool(store, profile, now=now, settings=settings, index_dir=index_dir, only=only)


def index_papers(store: SqlStore, settings: RankingSettings) -> None:
    """Bring the persisted ranking index up to date (after an ingest), so that the next
    rank pays nothing for today's papers. Without an index folder there is nothing to keep."""
    from digestbot.ranking.persist import sync_index

    index_dir = settings.index_dir or default_index_dir(store)
    if index_dir is not None:
        sync_index(store, index_dir)


def index_after_ingest(
    store: SqlStore,
    settings: RankingSettings,
    *,
    on_search_step: Callable[[int], None] | None = None,
) -> None:
    """Bring both derived indexes up to date after an ingest, side by side: the full-text
    search index (SQLite FTS5, C code that releases the GIL) on a thread, the ranking
    index here. After a bulk load of 100,000 papers each takes seconds; together they
    take about the longer of the two on two cores. ``on_search_step`` gets the pks each
    step of the search index's catch-up indexed (on that thread)."""
    from concurrent.futures import ThreadPoolExecutor

    from digestbot.store.search import catch_up_search_index

    with ThreadPoolExecutor(1, thread_name_prefix="search-index") as pool:
        search = pool.submit(catch_up_search_index, store, on_step=on_search_step)
        index_papers(store, settings)
        search.result()


def build_digest(
    store: SqlStore, profile: Profile, *, now: datetime, settings: RankingSettings | None = None
) -> Digest:
    ranked = rank_profile(store, profile, now=now, settings=settings, limit=profile.top_k)
    chosen = pick(ranked, profile)
    return Digest(
        profile=profile.name,
        digest_date=now.date(),
        generated_at=now,
        papers=tuple(chosen),
        description=profile.description,
    )


def write_markdown_digest(
    digest: Digest, *, out_dir: Path, templates_dir: Path | None = None
) -> Path:
    """Write ``<out_dir>/<profile>-<date>.md`` atomically and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{digest.profile}-{digest.digest_date.isoformat()}.md"
    tmp = target.with_suffix(".md.tmp")
    tmp.write_text(render_markdown(digest, templates_dir=templates_dir), encoding="utf-8")
    tmp.replace(target)
    return target
