"""Feed state and health: what to send back for a conditional GET, and how a feed fares.

One row per configured feed (by name): the ETag / Last-Modified of the last
answer and the SHA-256 of the last body parsed (for servers without
validators), when it last succeeded and failed, with what error, how many
failures in a row, and how many items it has brought. The validators are kept
only for the URL they came from: a feed whose URL changes is fetched afresh.

A URL carrying credentials (``https://user:pw@host/…``, ``?token=…``) is not stored as
it is, but as ``stored_url`` writes it: redacted, with the SHA-256 of the whole URL, so
a copy of the database holds no feed's credentials and a changed token still tells.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.redact import redact_url
from digestbot.store.schema import metadata, papers
from digestbot.store.sql import SqlStore, _chunks, naive_utc, utc

feed_state = sa.Table(
    "feed_state",
    metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("content_sha256", sa.String(64)),
    sa.Column("last_attempt", sa.DateTime),
    sa.Column("last_success", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_error_at", sa.DateTime),
    sa.Column("last_status", sa.String(16)),  # ok | not-modified | failed
    sa.Column("last_items", sa.Integer, nullable=False, server_default="0"),
    sa.Column("items_seen", sa.Integer, nullable=False, server_default="0"),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
)


def stored_url(url: str) -> str:
    """How ``feed_state`` keeps a feed's URL: as it is, or, when it carries credentials,
    redacted and followed by the SHA-256 of the whole URL (``https://***@host/feed
    sha256:…``)."""
    shown = redact_url(url)
    if shown == url:
        return url
    return f"{shown} sha256:{hashlib.sha256(url.encode('utf-8')).hexdigest()}"


def fingerprint_feed_urls(conn: Connection) -> None:
    """Version 6: the URLs stored with their credentials (versions 1-5) as ``stored_url``
    writes them, so a feed's validators still match its URL."""
    rows = conn.execute(sa.select(feed_state.c.name, feed_state.c.url)).all()
    for name, url in rows:
        if (new := stored_url(url)) != url:
            conn.execute(feed_state.update().where(feed_state.c.name == name).values(url=new))


@dataclass(frozen=True, slots=True)
class FeedState:
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    content_sha256: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_status: str | None = None
    last_items: int = 0
    items_seen: int = 0
    consecutive_failures: int = 0

    def validators_for(self, url: str) -> tuple[str | None, str | None, str | None]:
        """(etag, last_modified, content_sha256), or Nones when they belong to another URL."""
        if stored_url(url) != self.url:
            return None, None, None
        return self.etag, self.last_modified, self.content_sha256

    def as_dict(self) -> dict[str, object]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "name": self.name,
            "url": self.url,
            "last_status": self.last_status,
            "last_attempt": iso(self.last_attempt),
            "last_success": iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": iso(self.last_error_at),
            "consecutive_failures": self.consecutive_failures,
            "last_items": self.last_items,
            "items_seen": self.items_seen,
        }


def _state(row: Any) -> FeedState:
    return FeedState(
        name=row.name,
        url=row.url,
        etag=row.etag,
        last_modified=row.last_modified,
        content_sha256=row.content_sha256,
        last_attempt=utc(row.last_attempt),
        last_success=utc(row.last_success),
        last_error=row.last_error,
        last_error_at=utc(row.last_error_at),
        last_status=row.last_status,
        last_items=row.last_items,
        items_seen=row.items_seen,
        consecutive_failures=row.consecutive_failures,
    )


def load_feed_state(conn: Connection, name: str) -> FeedState | None:
    row = conn.execute(sa.select(feed_state).where(feed_state.c.name == name)).first()
    return _state(row) if row is not None else None


def load_feed_states(store: SqlStore) -> list[FeedState]:
    """Every feed's state, by name."""
    with store.transaction() as conn:
        rows = conn.execute(sa.select(feed_state).order_by(feed_state.c.name)).all()
    return [_state(row) for row in rows]


def record_feed_success(
    conn: Connection,
    name: str,
    *,
    url: str,
    now: datetime,
    status: str,
    etag: str | None,
    last_modified: str | None,
    content_sha256: str | None,
    items: int | None = None,
) -> None:
    """A poll that worked: ``status`` is ``ok`` (parsed ``items``) or ``not-modified``."""
    values: dict[str, Any] = {
        "url": stored_url(url),
        "etag": etag,
        "last_modified": last_modified,
        "content_sha256": content_sha256,
        "last_attempt": naive_utc(now),
        "last_success": naive_utc(now),
        "last_status": status,
        "consecutive_failures": 0,
    }
    if items is not None:
        values["last_items"] = items
        values["items_seen"] = sa.func.coalesce(feed_state.c.items_seen, 0) + items
    updated = conn.execute(feed_state.update().where(feed_state.c.name == name).values(values))
    if updated.rowcount == 0:
        if items is not None:
            values["items_seen"] = items
        conn.execute(feed_state.insert().values(name=name, **values))


def record_feed_failure(
    conn: Connection, name: str, *, url: str, error: str, now: datetime
) -> None:
    """A poll that failed: validators are kept (the last good answer still stands).

    The stored URL is left as it was, so validators of an old URL are never sent to a new one.
    """
    values: dict[str, Any] = {
        "last_attempt": naive_utc(now),
        "last_error": error,
        "last_error_at": naive_utc(now),
        "last_status": "failed",
        "consecutive_failures": feed_state.c.consecutive_failures + 1,
    }
    updated = conn.execute(feed_state.update().where(feed_state.c.name == name).values(values))
    if updated.rowcount == 0:
        conn.execute(
            feed_state.insert().values(
                name=name, url=stored_url(url), **{**values, "consecutive_failures": 1}
            )
        )


def known_arxiv_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    """Which of these arXiv ids the store holds (one IN query per chunk)."""
    wanted = sorted(set(ids))
    found: set[str] = set()
    for part in _chunks(wanted):
        found.update(
            conn.execute(sa.select(papers.c.arxiv_id).where(papers.c.arxiv_id.in_(part))).scalars()
        )
    return found
