"""The scheduler lock, job health and alert claims, on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digestbot.errors import LockHeldError
from digestbot.store import SqlStore
from digestbot.store.daemon import (
    acquire_lock,
    claim_alert,
    forget_alerts,
    load_lock,
    record_job_result,
    refresh_lock,
    release_lock,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
STALE = timedelta(seconds=90)


def test_a_second_holder_is_refused_with_the_holder_named(any_store: SqlStore) -> None:
    acquire_lock(any_store, "scheduler", holder="host-a:101:aaaa", now=NOW, stale_after=STALE)
    with pytest.raises(LockHeldError) as caught:
        acquire_lock(
            any_store, "scheduler", holder="host-b:202:bbbb", now=NOW + timedelta(seconds=30),
            stale_after=STALE,
        )  # fmt: skip
    assert caught.value.holder == "host-a:101:aaaa"
    assert "another scheduler is running on this database: host-a:101:aaaa" in str(caught.value)
    assert "since 2026-11-23 09:00:00 UTC" in str(caught.value)
    lock = load_lock(any_store, "scheduler")
    assert lock is not None and lock.holder == "host-a:101:aaaa"


def test_a_crashed_holder_stops_blocking_after_the_stale_time(any_store: SqlStore) -> None:
    acquire_lock(any_store, "scheduler", holder="dead:1:x", now=NOW, stale_after=STALE)
    assert refresh_lock(any_store, "scheduler", holder="dead:1:x", now=NOW + timedelta(seconds=30))
    later = NOW + timedelta(seconds=30) + STALE + timedelta(seconds=1)
    acquire_lock(any_store, "scheduler", holder="new:2:y", now=later, stale_after=STALE)
    lock = load_lock(any_store, "scheduler")
    assert lock is not None and lock.holder == "new:2:y"
    # the old holder, should it wake up, learns that it lost the lock
    assert refresh_lock(any_store, "scheduler", holder="dead:1:x", now=later) is False
    release_lock(any_store, "scheduler", holder="dead:1:x")  # not its lock: nothing happens
    assert load_lock(any_store, "scheduler") is not None
    release_lock(any_store, "scheduler", holder="new:2:y")
    assert load_lock(any_store, "scheduler") is None


def test_job_results_count_consecutive_failures(any_store: SqlStore) -> None:
    assert record_job_result(any_store, "feed:x", ok=False, now=NOW, error="500") == 1
    assert record_job_result(any_store, "feed:x", ok=False, now=NOW, error="timeout") == 2
    assert record_job_result(any_store, "feed:x", ok=True, now=NOW) == 0
    assert record_job_result(any_store, "feed:x", ok=False, now=NOW, error="500") == 1


def test_an_alert_is_claimed_once_until_forgotten(any_store: SqlStore) -> None:
    assert claim_alert(any_store, kind="source-failing", key="feed:x|streak", message="m", now=NOW)
    assert not claim_alert(
        any_store, kind="source-failing", key="feed:x|streak", message="m", now=NOW
    )
    forget_alerts(any_store, kind="source-failing", key_prefix="feed:x|")
    assert claim_alert(any_store, kind="source-failing", key="feed:x|streak", message="m", now=NOW)
