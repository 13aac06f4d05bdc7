"""One scheduler per database: hold the ``scheduler`` row of ``locks`` while running.

Taken with an INSERT that fails on the primary key (``digestbot.store.daemon``),
so it holds between processes and between machines sharing PostgreSQL. A thread
refreshes the heartbeat; a holder silent for three heartbeats is presumed dead
and may be replaced, and a holder that finds itself replaced is told to stop.
The heartbeat and the staleness are the database's clock, never this machine's:
machines sharing PostgreSQL may disagree on the time (``clock`` is for tests).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from digestbot.errors import DigestError
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock, refresh_lock, release_lock

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler"
HEARTBEAT_SECONDS = 30.0  # the lock is stale after three missed heartbeats


@contextmanager
def holding_scheduler_lock(
    store: SqlStore,
    *,
    holder: str,
    clock: Callable[[], datetime] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    on_lost: Callable[[], None],
) -> Iterator[None]:
    """Take the lock (or raise ``LockHeldError``), beat its heart on a thread, then let it go."""
    stale = timedelta(seconds=3 * heartbeat_seconds)

    def now() -> datetime | None:  # None: the database's clock
        return None if clock is None else clock()

    acquire_lock(store, LOCK_NAME, holder=holder, now=now(), stale_after=stale)
    log.info("took the scheduler lock as %s", holder, extra={"event": "lock.taken"})
    done = threading.Event()

    def beat() -> None:
        while not done.wait(heartbeat_seconds):
            try:
                still_ours = refresh_lock(store, LOCK_NAME, holder=holder, now=now())
            except DigestError as exc:
                log.warning("heartbeat failed: %s", exc, extra={"event": "lock.heartbeat"})
                continue
            if not still_ours:
                log.error(
                    "lost the scheduler lock (taken over as stale): stopping",
                    extra={"event": "lock.lost"},
                )
                on_lost()
                return

    thread = threading.Thread(target=beat, name="digestbot-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
        release_lock(store, LOCK_NAME, holder=holder)
        log.info("released the scheduler lock", extra={"event": "lock.released"})
