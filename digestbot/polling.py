"""Poll the configured feeds: fetch, parse, merge into the store, record health.

``poll_feeds`` is what ``digestbot fetch`` and the daemon call. Each feed is
one transaction (papers, their sources and the feed's state together); a feed
that fails is recorded as failed with its error and the others still go in.

What counts:

- ``new``: papers the store did not hold; ``merged``: items that matched a
  stored paper (or another item of the same document) and filled it in;
- ``updated``: arXiv ``replace`` / ``replace-cross`` announcements (only when
  listed in ``announce_types``) applied to a paper already stored. They never
  add a paper, so a revised old paper is never "new" in a digest;
- ``skipped``: items not taken: another announcement type, a replacement of a
  paper we never stored, or an item the parser refused (see ``warnings``).

A 304, or a body byte-identical to the last one parsed, is ``not-modified``:
nothing is parsed or written but the feed's health. A document with items none of
which can be read is ``failed`` (an empty one is a quiet day, ``ok``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from digestbot.config import FeedSettings, Settings
from digestbot.errors import FeedError, FetchError, NotFoundError, SourceError
from digestbot.sources.feeds import FeedItem, FeedParse, parse_feed
from digestbot.sources.fetch import (
    DEFAULT_LIMITER,
    FetchResult,
    HostRateLimiter,
    Sleep,
    build_http_client,
    fetch_feed,
)
from digestbot.sources.hf import is_json_feed, parse_hf_daily_papers, parse_json_feed
from digestbot.store import SqlStore
from digestbot.store.feeds import (
    known_arxiv_ids,
    load_feed_state,
    record_feed_failure,
    record_feed_success,
)
from digestbot.store.sql import take_write_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    name: str
    status: str  # ok | not-modified | failed
    items: int = 0
    new: int = 0
    merged: int = 0
    updated: int = 0
    skipped: int = 0
    error: str | None = None
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "items": self.items,
            "new": self.new,
            "merged": self.merged,
            "updated": self.updated,
            "skipped": self.skipped,
            "error": self.error,
            "warnings": list(self.warnings),
        }


@dataclass(slots=True)
class FetchReport:
    feeds: list[FeedOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status != "failed" for f in self.feeds)

    @property
    def papers_new(self) -> int:
        return sum(f.new for f in self.feeds)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "papers": {
                "new": self.papers_new,
                "merged": sum(f.merged for f in self.feeds),
                "updated": sum(f.updated for f in self.feeds),
                "skipped": sum(f.skipped for f in self.feeds),
            },
            "feeds": [f.as_dict() for f in self.feeds],
        }


def _is_json_list(data: bytes) -> bool:
    return data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"[")


def parse_source(
    data: bytes, *, kind: str, name: str, content_type: str | None = None
) -> FeedParse:
    """Bytes of a feed of ``kind`` -> papers: HF API JSON, JSON Feed, or RSS/Atom."""
    if kind == "hf-api" or _is_json_list(data):
        # a JSON list is no RSS, Atom or JSON Feed: the daily_papers API without its kind
        return parse_hf_daily_papers(data, name=name)
    if is_json_feed(data):
        return parse_json_feed(data, name=name)
    return parse_feed(data, name=name, content_type=content_type)


def split_items(
    items: list[FeedItem], *, announce_types: list[str]
) -> tuple[list[FeedItem], list[FeedItem], int]:
    """(papers to add or merge, replacements to apply, items skipped by announcement type)."""
    wanted = set(announce_types)
    fresh: list[FeedItem] = []
    replacements: list[FeedItem] = []
    skipped = 0
    for item in items:
        if item.announce_type is not None and item.announce_type not in wanted:
            skipped += 1
        elif item.is_replacement:
            replacements.append(item)
        else:
            fresh.append(item)
    return fresh, replacements, skipped


def store_feed_items(
    store: SqlStore,
    feed: FeedSettings,
    parsed: FeedParse,
    result: FetchResult,
    *,
    sha256: str,
    now: datetime,
) -> FeedOutcome:
    """Merge one parsed document into the store and record the feed's state: one transaction."""
    fresh, replacements, skipped = split_items(parsed.items, announce_types=feed.announce_types)
    skipped += parsed.entries - len(parsed.items)
    with store.transaction() as conn:
        take_write_lock(conn)  # what is stored is read and written with no writer between
        known = known_arxiv_ids(conn, (i.paper.arxiv_id for i in replacements if i.paper.arxiv_id))
        applied = [i for i in replacements if i.paper.arxiv_id in known]
        skipped += len(replacements) - len(applied)
        counts, pks = store.upsert_papers(conn, [i.paper for i in fresh], now=now)
        _, replaced_pks = store.upsert_papers(conn, [i.paper for i in applied], now=now)
        refs = [(pks[n], i.paper.source) for n, i in enumerate(fresh) if i.paper.source]
        refs += [(replaced_pks[n], i.paper.source) for n, i in enumerate(applied) if i.paper.source]
        store.record_sources(conn, refs, now=now)
        # a document cut short keeps no validators: the next poll reads it whole again
        # (answered 304, or skipped as the same body, the items after the cut were lost)
        whole = parsed.complete
        record_feed_success(
            conn,
            feed.name,
            url=feed.url,
            now=now,
            status="ok",
            etag=result.etag if whole else None,
            last_modified=result.last_modified if whole else None,
            content_sha256=sha256 if whole else None,
            items=parsed.entries,
        )
    return FeedOutcome(
        name=feed.name,
        status="ok",
        items=parsed.entries,
        new=counts.new,
        merged=counts.merged,
        updated=len(applied),
        skipped=skipped,
        warnings=tuple(parsed.warnings),
    )


def _failed(store: SqlStore, feed: FeedSettings, error: str, *, now: datetime) -> FeedOutcome:
    log.error("%s", error)
    with store.transaction() as conn:
        record_feed_failure(conn, feed.name, url=feed.url, error=error, now=now)
    return FeedOutcome(name=feed.name, status="failed", error=error)


def _fetch_error_message(exc: FetchError, feed: FeedSettings) -> str:
    """arXiv's API answers 400 with an Atom error entry: report its message, not just '400'."""
    if exc.body:
        try:
            parse_source(exc.body, kind=feed.kind, name=feed.name)
        except FeedError as inner:
            return f"{exc.message} ({inner.message.removeprefix(feed.name + ': ')})"
        except SourceError:
            pass
    return exc.message


def poll_feed(
    store: SqlStore,
    feed: FeedSettings,
    *,
    now: datetime,
    http: httpx.Client,
    limiter: HostRateLimiter = DEFAULT_LIMITER,
    sleep: Sleep = time.sleep,
) -> FeedOutcome:
    """Fetch one feed (conditionally) and merge what is new. Never raises ``SourceError``."""
    with store.transaction() as conn:
        state = load_feed_state(conn, feed.name)
    etag, last_modified, last_sha = state.validators_for(feed.url) if state else (None,) * 3
    try:
        result = fetch_feed(
            http,
            feed.url,
            source=feed.name,
            now=now,
            etag=etag,
            last_modified=last_modified,
            timeout=feed.timeout,
            limiter=limiter,
            sleep=sleep,
        )
    except FetchError as exc:
        return _failed(store, feed, _fetch_error_message(exc, feed), now=now)
    moved = result.moved_warning(feed.name)
    for warning in moved:
        log.warning("%s", warning)
    sha256 = None if result.is_not_modified else hashlib.sha256(result.body).hexdigest()
    if sha256 is None or sha256 == last_sha:
        with store.transaction() as conn:
            record_feed_success(
                conn,
                feed.name,
                url=feed.url,
                now=now,
                status="not-modified",
                etag=result.etag or etag,
                last_modified=result.last_modified or last_modified,
                content_sha256=last_sha,
            )
        return FeedOutcome(name=feed.name, status="not-modified", warnings=tuple(moved))
    try:
        parsed = parse_source(
            result.body, kind=feed.kind, name=feed.name, content_type=result.content_type
        )
    except SourceError as exc:
        return _failed(store, feed, exc.message, now=now)
    if parsed.entries and not parsed.items:
        # every item refused (a format change: no links, no ids…): a failure that alerts,
        # not an "ok, 0 new" that looks like a quiet day for as long as it lasts
        first = parsed.warnings[0].removeprefix(f"{feed.name}: ") if parsed.warnings else "?"
        error = f"{feed.name}: none of its {parsed.entries} items could be read (first: {first})"
        return _failed(store, feed, error, now=now)
    for warning in parsed.warnings:
        log.warning("%s", warning)
    parsed.warnings[:0] = moved
    return store_feed_items(store, feed, parsed, result, sha256=sha256, now=now)


def select_feeds(settings: Settings, only: str | None) -> list[FeedSettings]:
    if only is None:
        return list(settings.feeds)
    for feed in settings.feeds:
        if feed.name == only:
            return [feed]
    raise NotFoundError("feed", only, known=[f.name for f in settings.feeds])


def poll_feeds(
    settings: Settings,
    store: SqlStore,
    *,
    now: datetime,
    http: httpx.Client | None = None,
    only: str | None = None,
    limiter: HostRateLimiter = DEFAULT_LIMITER,
    sleep: Sleep = time.sleep,
    on_feed: Callable[[FeedOutcome], None] | None = None,
) -> FetchReport:
    """Poll every configured feed (or the one named ``only``); one failing leaves the rest."""
    feeds = select_feeds(settings, only)
    client = http or build_http_client()
    report = FetchReport()
    try:
        for feed in feeds:
            outcome = poll_feed(store, feed, now=now, http=client, limiter=limiter, sleep=sleep)
            report.feeds.append(outcome)
            if on_feed is not None:
                on_feed(outcome)
    finally:
        if http is None:
            client.close()
    return report
