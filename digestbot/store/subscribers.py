"""Newsletter subscribers: per profile, an address with a cadence and a status.

``subscribers`` holds one row per (profile, address). ``status`` is ``active``,
``unsubscribed`` (the reader opted out: also recorded for a config
``deliver.email.to`` recipient, whose opt-out is honoured too) or ``bounced`` (a
permanent 5xx from the receiving server; not retried). Addresses are stored
normalised (trimmed, lower case), the same form as the ledger's ``email:<address>``
destination keys, so a config recipient and a subscriber are one destination.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from digestbot.errors import AddressError
from digestbot.store.schema import metadata
from digestbot.store.sql import SqlStore, _chunks, naive_utc, utc

Cadence = Literal["daily", "weekly"]
SubscriberStatus = Literal["active", "unsubscribed", "bounced"]
CADENCES: tuple[Cadence, ...] = ("daily", "weekly")
STATUSES: tuple[SubscriberStatus, ...] = ("active", "unsubscribed", "bounced")

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("profile", sa.String(255), nullable=False),
    sa.Column("address", sa.String(320), nullable=False),  # normalised, lower case
    sa.Column("cadence", sa.String(16), nullable=False),  # daily | weekly
    sa.Column("status", sa.String(16), nullable=False),  # active | unsubscribed | bounced
    sa.Column("error", sa.Text),  # the bounce
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("profile", "address", name="uq_subscribers_address"),
    sa.Index("ix_subscribers_profile_status", "profile", "status"),
)


@dataclass(frozen=True, slots=True)
class Subscriber:
    profile: str
    address: str
    cadence: Cadence
    status: SubscriberStatus
    created_at: datetime
    updated_at: datetime
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "email": self.address,
            "cadence": self.cadence,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "error": self.error,
        }


def normalize_address(text: str) -> str:
    """The address in its stored form, or ``AddressError`` naming it (no DNS look-up)."""
    from email_validator import EmailNotValidError, validate_email  # only when used: ~30 ms

    raw = text.strip()
    if not raw:
        raise AddressError("an empty email address", address=text)
    try:
        checked = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"not a valid email address: {exc}", address=text) from exc
    return str(checked.normalized).lower()


def _subscriber(row: sa.Row[tuple[object, ...]]) -> Subscriber:
    m = row._mapping
    return Subscriber(
        profile=str(m["profile"]),
        address=str(m["address"]),
        cadence=m["cadence"],
        status=m["status"],
        created_at=utc(m["created_at"]) or m["created_at"],
        updated_at=utc(m["updated_at"]) or m["updated_at"],
        error=m["error"],
    )


def upsert_subscribers(
    store: SqlStore,
    *,
    profile: str,
    rows: Iterable[tuple[str, Cadence, SubscriberStatus]],
    now: datetime,
    keep_unsubscribed: bool = False,
) -> tuple[int, int]:
    """Add or update (address, cadence, status) rows in one transaction. Addresses must be
    normalised (``normalize_address``). Returns (added, updated). ``keep_unsubscribed``: a
    reader who opted out stays ``unsubscribed`` whatever the row says (an import)."""
    wanted = {address: (cadence, status) for address, cadence, status in rows}
    stamp = naive_utc(now)
    added = updated = 0
    with store.transaction() as conn:
        existing: set[str] = set()
        opted_out: set[str] = set()
        for part in _chunks(list(wanted)):
            for address, current in conn.execute(
                sa.select(subscribers.c.address, subscribers.c.status).where(
                    subscribers.c.profile == profile, subscribers.c.address.in_(part)
                )
            ):
                existing.add(address)
                if current == "unsubscribed":
                    opted_out.add(address)
        new = [
            {
                "profile": profile,
                "address": address,
                "cadence": cadence,
                "status": status,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for address, (cadence, status) in wanted.items()
            if address not in existing
        ]
        if new:
            conn.execute(subscribers.insert(), new)
            added = len(new)
        for address in existing:
            cadence, status = wanted[address]
            if keep_unsubscribed and address in opted_out:
                status = "unsubscribed"
            conn.execute(
                subscribers.update()
                .where(subscribers.c.profile == profile, subscribers.c.address == address)
                .values(cadence=cadence, status=status, error=None, updated_at=stamp)
            )
            updated += 1
    return added, updated


def remove_subscribers(store: SqlStore, *, profile: str, addresses: Sequence[str]) -> int:
    """Forget the addresses (an admin's removal, not an opt-out). Returns how many went."""
    removed = 0
    with store.transaction() as conn:
        for part in _chunks(list(addresses)):
            result = conn.execute(
                subscribers.delete().where(
                    subscribers.c.profile == profile, subscribers.c.address.in_(part)
                )
            )
            removed += result.rowcount or 0
    return removed


def load_subscribers(
    store: SqlStore,
    *,
    profile: str | None = None,
    statuses: Sequence[SubscriberStatus] | None = None,
) -> list[Subscriber]:
    """Subscribers (of one profile), by profile then address."""
    query = sa.select(subscribers).order_by(subscribers.c.profile, subscribers.c.address)
    if profile is not None:
        query = query.where(subscribers.c.profile == profile)
    if statuses is not None:
        query = query.where(subscribers.c.status.in_(list(statuses)))
    with store.transaction() as conn:
        return [_subscriber(r) for r in conn.execute(query).all()]


def record_unsubscribe(store: SqlStore, *, profile: str, address: str, now: datetime) -> bool:
    """The reader opted out: ``unsubscribed`` (a row is created for a config recipient).
    Returns False when the address had already opted out."""
    stamp = naive_utc(now)
    with store.transaction() as conn:
        status = conn.execute(
            sa.select(subscribers.c.status).where(
                subscribers.c.profile == profile, subscribers.c.address == address
            )
        ).scalar_one_or_none()
        if status == "unsubscribed":
            return False
        if status is None:
            conn.execute(
                subscribers.insert().values(
                    profile=profile,
                    address=address,
                    cadence="daily",
                    status="unsubscribed",
                    created_at=stamp,
                    updated_at=stamp,
                )
            )
        else:
            conn.execute(
                subscribers.update()
                .where(subscribers.c.profile == profile, subscribers.c.address == address)
                .values(status="unsubscribed", updated_at=stamp)
            )
    return True


def mark_bounced(store: SqlStore, *, profile: str, address: str, error: str, now: datetime) -> bool:
    """A permanent failure for a subscriber: ``bounced`` with the error. False when the
    address is not an active subscriber of the profile (a config recipient, say)."""
    with store.transaction() as conn:
        result = conn.execute(
            subscribers.update()
            .where(
                subscribers.c.profile == profile,
                subscribers.c.address == address,
                subscribers.c.status == "active",
            )
            .values(status="bounced", error=error[:2000], updated_at=naive_utc(now))
        )
        return bool(result.rowcount)


def load_opted_out(store: SqlStore, *, profile: str) -> set[str]:
    """Addresses that unsubscribed from, or bounce for, the profile."""
    query = sa.select(subscribers.c.address).where(
        subscribers.c.profile == profile, subscribers.c.status != "active"
    )
    with store.transaction() as conn:
        return set(conn.execute(query).scalars())
