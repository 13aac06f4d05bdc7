"""The scheduler lock is timed by the database's clock, not by each machine's own.

Machines sharing PostgreSQL may disagree on the time: a daemon whose clock runs an hour
ahead must not take over a live lock, and one whose clock was stepped back an hour must
still take over the lock of a holder that crashed. The daemons below are given such
clocks; the lock they hold is judged on the database's clock alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from digestbot.alerts import Alerter
from digestbot.config import parse_settings
from digestbot.errors import LockHeldError
from digestbot.scheduler import Daemon
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.daemon import database_now, load_lock, locks, refresh_lock

ONE_HOUR = timedelta(hours=1)


class Quiet:
    def notify(self, alert: object) -> None:
        pass


def daemon_with_clock(
    tmp_path: Path, store: SqlStore, clock: Callable[[], datetime], holder: str
) -> Daemon:
    settings = parse_settings({"drops": {"path": str(tmp_path)}, "profiles": []}, env={})
    return Daemon(
        settings, store, send=None, alerter=Alerter(store, Quiet()), clock=clock, holder=holder
    )


def db_now(store: SqlStore) -> datetime:
    with store.transaction() as conn:
        return database_now(conn)


def test_the_database_clock_is_read_in_utc(any_store: SqlStore) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)
    read = db_now(any_store)
    after = datetime.now(UTC).replace(tzinfo=None)
    # the test's machine is the database's: the same clock, within the round trip
    assert before - timedelta(seconds=1) <= read <= after + timedelta(seconds=1)
    assert read.tzinfo is None


def test_a_daemon_whose_clock_runs_ahead_cannot_take_over_a_live_lock(
    any_store: SqlStore, tmp_path: Path
) -> None:
    live = daemon_with_clock(tmp_path, any_store, lambda: datetime.now(UTC), "host-a:1:a")
    ahead = daemon_with_clock(
        tmp_path, any_store, lambda: datetime.now(UTC) + ONE_HOUR, "host-b:2:b"
    )
    with live.holding_lock():
        with pytest.raises(LockHeldError) as caught, ahead.holding_lock():
            pass
        assert caught.value.holder == "host-a:1:a"
        lock = load_lock(any_store, "scheduler")
        assert lock is not None and lock.holder == "host-a:1:a"
        # the live holder's heartbeat still finds the lock its own
        assert refresh_lock(any_store, "scheduler", holder="host-a:1:a")
    assert load_lock(any_store, "scheduler") is None


def test_a_daemon_whose_clock_was_stepped_back_takes_over_a_crashed_holders_lock(
    any_store: SqlStore, tmp_path: Path
) -> None:
    # a holder that crashed 100 s ago (its last heartbeat by the database's clock): stale
    last_beat = db_now(any_store) - timedelta(seconds=100)
    with any_store.transaction() as conn:
        conn.execute(
            locks.insert().values(
                name="scheduler", holder="dead:1:x", acquired_at=last_beat, heartbeat_at=last_beat
            )
        )
    behind = daemon_with_clock(
        tmp_path, any_store, lambda: datetime.now(UTC) - ONE_HOUR, "host-c:3:c"
    )
    with behind.holding_lock():
        lock = load_lock(any_store, "scheduler")
        assert lock is not None and lock.holder == "host-c:3:c"
        # stamped with the database's time, not the hour-behind clock
        assert abs(lock.heartbeat_at.replace(tzinfo=None) - db_now(any_store)) < timedelta(
            seconds=5
        )
    with any_store.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(locks)).scalar_one() == 0


def test_status_judges_the_heartbeat_on_the_database_clock(
    any_store: SqlStore, tmp_path: Path
) -> None:
    settings = parse_settings({"drops": {"path": str(tmp_path)}, "profiles": []}, env={})
    live = daemon_with_clock(tmp_path, any_store, lambda: datetime.now(UTC), "host-a:1:a")
    with live.holding_lock():
        # read on a host whose clock runs an hour ahead: the lock is fresh all the same
        report = build_status(settings, any_store, now=datetime.now(UTC) + ONE_HOUR)
        assert report["scheduler"]["holder"] == "host-a:1:a"
        assert report["scheduler"]["stale"] is False
        # silent for 100 s by the database's clock: stale, read on a host an hour behind
        old = db_now(any_store) - timedelta(seconds=100)
        with any_store.transaction() as conn:
            conn.execute(locks.update().values(heartbeat_at=old))
        report = build_status(settings, any_store, now=datetime.now(UTC) - ONE_HOUR)
        assert report["scheduler"]["stale"] is True
