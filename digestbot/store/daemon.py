"""The daemon's tables: the scheduler lock, job health, alerts already given.

* ``locks``: one row per lock name. Taken with a plain INSERT that fails on the
  primary key, so two processes (or two machines on one PostgreSQL) cannot both
  hold it; a holder whose heartbeat is older than ``stale_after`` is presumed dead
  and its row is replaced in the same transaction. Its times are the database's
  clock (``now=None``, what the daemon uses): machines sharing PostgreSQL compare
  one clock, so a host whose clock runs ahead cannot take over a live lock, nor a
  clock stepped back refuse a restart after a crash. Tests may give ``now``.
* ``job_health``: consecutive failures per source (``drops``, ``feed:NAME``), so
  "a source keeps failing" survives restarts and ``status`` can show it.
* ``alerts_sent``: one row per alert key, so an alert is given once, not every
  minute and not again after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from digestbot.errors import LockHeldError, StoreError
from digestbot.store.schema import metadata
from digestbot.store.sql import SqlStore, naive_utc, utc

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),  # hostname:pid:uuid
    sa.Column("acquired_at", sa.DateTime, nullable=False),
    sa.Column("heartbeat_at", sa.DateTime, nullable=False),
)

job_health = sa.Table(
    "job_health",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),  # drops | feed:NAME
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_ok_at", sa.DateTime),
    sa.Column("last_failed_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
)

alerts_sent = sa.Table(
    "alerts_sent",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("key", sa.String(512), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("sent_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("kind", "key", name="uq_alerts_sent_key"),
)


@dataclass(frozen=True, slots=True)
class LockInfo:
    name: str
    holder: str
    acquired_at: datetime
    heartbeat_at: datetime
    read_at: datetime | None = None  # the database's clock when it was read

    @property
    def age(self) -> timedelta | None:
        """Time since the last heartbeat, on the database's clock (None: not read from it)."""
        return None if self.read_at is None else self.read_at - self.heartbeat_at


@dataclass(frozen=True, slots=True)
class JobHealth:
    name: str
    consecutive_failures: int
    last_ok_at: datetime | None
    last_failed_at: datetime | None
    last_error: str | None


def database_now(conn: sa.Connection) -> datetime:
    """The database server's clock, in UTC and naive as the tables store times (SQLite's is
    this machine's; PostgreSQL's the server's, the same for every machine using it)."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(sa.text("SELECT clock_timestamp() AT TIME ZONE 'UTC'")).scalar_one()
    else:
        text = conn.execute(sa.text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
        value = datetime.fromisoformat(text)
    if not isinstance(value, datetime):  # pragma: no cover - a driver answering otherwise
        raise StoreError(f"the database's clock answered {value!r}")
    return value.replace(tzinfo=None)


def _lock_from_row(row: Any, *, read_at: datetime | None = None) -> LockInfo:
    return LockInfo(
        name=row[0],
        holder=row[1],
        acquired_at=utc(row[2]) or row[2],
        heartbeat_at=utc(row[3]) or row[3],
        read_at=utc(read_at),
    )


def load_lock(store: SqlStore, name: str) -> LockInfo | None:
    """The lock's row, with the database's clock at reading (its ``age`` is judged on it)."""
    with store.transaction() as conn:
        row = conn.execute(
            sa.select(
                locks.c.name, locks.c.holder, locks.c.acquired_at, locks.c.heartbeat_at
            ).where(locks.c.name == name)
        ).first()
        read_at = database_now(conn) if row is not None else None
    return _lock_from_row(row, read_at=read_at) if row is not None else None


def acquire_lock(
    store: SqlStore,
    name: str,
    *,
    holder: str,
    stale_after: timedelta,
    now: datetime | None = None,
) -> LockInfo:
    """Take the lock or raise ``LockHeldError`` naming who holds it; its times are the
    database's clock unless ``now`` is given."""
    try:
        with store.engine.begin() as conn:
            stamp = database_now(conn) if now is None else naive_utc(now)
            conn.execute(
                locks.delete().where(
                    locks.c.name == name, locks.c.heartbeat_at < stamp - stale_after
                )
            )
            conn.execute(
                locks.insert().values(
                    name=name, holder=holder, acquired_at=stamp, heartbeat_at=stamp
                )
            )
    except sa.exc.IntegrityError:
        current = load_lock(store, name)
        who = current.holder if current is not None else "another process"
        since = (
            f" since {current.acquired_at:%Y-%m-%d %H:%M:%S} UTC, last heartbeat "
            f"{current.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC"
            if current is not None
            else ""
        )
        raise LockHeldError(
            f"another scheduler is running on this database: {who}{since}; "
            f"stop it first (a crashed holder's lock expires after "
            f"{int(stale_after.total_seconds())} s without a heartbeat)",
            name=name,
            holder=who,
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot take the lock {name!r}: {exc.__class__.__name__}") from exc
    taken = utc(stamp) or stamp
    return LockInfo(name=name, holder=holder, acquired_at=taken, heartbeat_at=taken)


def refresh_lock(store: SqlStore, name: str, *, holder: str, now: datetime | None = None) -> bool:
    """Beat the heart (at the database's clock unless ``now`` is given); ``False`` when the
    lock is no longer ours (taken over as stale)."""
    with store.transaction() as conn:
        stamp = database_now(conn) if now is None else naive_utc(now)
        result = conn.execute(
            locks.update()
            .where(locks.c.name == name, locks.c.holder == holder)
            .values(heartbeat_at=stamp)
        )
    return result.rowcount == 1


def release_lock(store: SqlStore, name: str, *, holder: str) -> None:
    with store.transaction() as conn:
        conn.execute(locks.delete().where(locks.c.name == name, locks.c.holder == holder))


def record_job_result(
    store: SqlStore, name: str, *, ok: bool, now: datetime, error: str | None = None
) -> int:
    """Record one run of a source job; returns its consecutive failures after this run."""
    stamp = naive_utc(now)
    with store.transaction() as conn:
        current = conn.execute(
            sa.select(job_health.c.consecutive_failures).where(job_health.c.name == name)
        ).scalar()
        failures = 0 if ok else (current or 0) + 1
        values: dict[str, object] = {"consecutive_failures": failures}
        if ok:
            values["last_ok_at"] = stamp
        else:
            values["last_failed_at"] = stamp
            values["last_error"] = error
        if current is None:
            conn.execute(job_health.insert().values(name=name, **values))
        else:
            conn.execute(job_health.update().where(job_health.c.name == name).values(**values))
    return failures


def load_job_health(store: SqlStore) -> list[JobHealth]:
    with store.transaction() as conn:
        rows = conn.execute(sa.select(job_health).order_by(job_health.c.name)).all()
    return [
        JobHealth(
            name=row.name,
            consecutive_failures=row.consecutive_failures,
            last_ok_at=utc(row.last_ok_at),
            last_failed_at=utc(row.last_failed_at),
            last_error=row.last_error,
        )
        for row in rows
    ]


def claim_alert(store: SqlStore, *, kind: str, key: str, message: str, now: datetime) -> bool:
    """Record that an alert is given; ``False`` when this one was given before."""
    try:
        with store.engine.begin() as conn:
            conn.execute(
                alerts_sent.insert().values(
                    kind=kind, key=key[:512], message=message, sent_at=naive_utc(now)
                )
            )
    except sa.exc.IntegrityError:
        return False
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot record the alert: {exc.__class__.__name__}") from exc
    return True


def forget_alerts(store: SqlStore, *, kind: str, key_prefix: str) -> None:
    """Allow an alert again (a source recovered: the next failure streak alerts anew)."""
    with store.transaction() as conn:
        conn.execute(
            alerts_sent.delete().where(
                alerts_sent.c.kind == kind,
                alerts_sent.c.key.startswith(key_prefix, autoescape=True),
            )
        )
