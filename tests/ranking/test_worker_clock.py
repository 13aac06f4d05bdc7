"""Whether a daemon's worker embeds new papers is judged on the database's clock, as the
scheduler lock's heartbeat is written (a machine whose clock runs ahead or behind)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digestbot.lock import LOCK_NAME
from digestbot.ranking.semantic import is_worker_running
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock


def test_a_live_daemon_is_seen_from_a_machine_whose_clock_runs_ahead_or_behind(
    store: SqlStore,
) -> None:
    acquire_lock(store, LOCK_NAME, holder="h:1:u", stale_after=timedelta(seconds=90))
    here = datetime.now(UTC)
    assert is_worker_running(store, now=here + timedelta(hours=1))
    assert is_worker_running(store, now=here - timedelta(hours=1))


def test_a_daemon_silent_for_long_is_not_running_on_either_clock(store: SqlStore) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    acquire_lock(store, LOCK_NAME, holder="h:1:u", stale_after=timedelta(seconds=90), now=long_ago)
    assert not is_worker_running(store, now=datetime.now(UTC))
    assert is_worker_running(store, now=long_ago + timedelta(seconds=30))  # the caller's times
