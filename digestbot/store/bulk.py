"""Bulk mode: one writer connection tuned for a big ingest, each file still one transaction.

On SQLite, for the length of the ingest: no automatic checkpoint on commit (a
thread checkpoints the WAL on a connection of its own, in parallel, and a last
checkpoint runs at the end), a 64 MB page cache (the indexes' random inserts stay
in memory), ``synchronous=NORMAL`` (durable at checkpoints; a crash loses at most
the last commits, never half a file) and the WAL truncated to 64 MB after a
checkpoint. The connection's settings are put back before it returns to the pool.
Other databases: the same one connection, nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.errors import StoreError
from digestbot.store.sql import SqlStore, _short

CACHE_KIB = 64 * 1024
JOURNAL_LIMIT = 64 * 1024 * 1024
CHECKPOINT_SECONDS = 0.5

_BULK = (
    "PRAGMA wal_autocheckpoint=0",
    f"PRAGMA cache_size=-{CACHE_KIB}",
    f"PRAGMA journal_size_limit={JOURNAL_LIMIT}",
    "PRAGMA synchronous=NORMAL",
)
_USUAL = (  # as ``_sqlite_pragmas`` sets on connect, and SQLite's default cache
    "PRAGMA wal_autocheckpoint=4000",
    "PRAGMA cache_size=-2000",
    "PRAGMA busy_timeout=10000",
)
# The last checkpoint waits for readers still on the WAL, but not long: if one holds on,
# the WAL is checkpointed by the next commits instead.
_LAST_CHECKPOINT = ("PRAGMA busy_timeout=1000", "PRAGMA wal_checkpoint(TRUNCATE)")


class BulkWriter:
    """The one connection of a bulk ingest; ``transaction()`` per file."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; SQLAlchemy errors become ``StoreError`` (as ``SqlStore``)."""
        try:
            with self.conn.begin():
                yield self.conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database error: {_short(exc)}") from exc


def _checkpoint_loop(store: SqlStore, stop: threading.Event) -> None:
    """Copy committed WAL pages into the database while the writer goes on (PASSIVE:
    never waits for a lock), so that the WAL stays short."""
    with store.engine.connect() as conn:
        while not stop.wait(CHECKPOINT_SECONDS):
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            conn.commit()


@contextmanager
def bulk_writer(store: SqlStore) -> Iterator[BulkWriter]:
    """One tuned writer connection (and, on SQLite, a checkpoint thread) for a big ingest."""
    try:
        conn = store.engine.connect()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot open the database: {_short(exc)}") from exc
    url = store.engine.url
    is_sqlite = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    stop = threading.Event()
    checkpointer: threading.Thread | None = None
    try:
        if is_sqlite:
            for pragma in _BULK:
                conn.exec_driver_sql(pragma)
            conn.commit()
            checkpointer = threading.Thread(
                target=_checkpoint_loop, args=(store, stop), name="wal-checkpoint", daemon=True
            )
            checkpointer.start()
        yield BulkWriter(conn)
    finally:
        stop.set()
        if checkpointer is not None:
            checkpointer.join()
        try:
            if is_sqlite:
                conn.rollback()
                for pragma in (*_LAST_CHECKPOINT, *_USUAL):
                    conn.exec_driver_sql(pragma)
                conn.commit()
        finally:
            conn.close()
