"""``digestbot status``: is it working? Computed from the config, the clock and the database.

Next run times come from the same cron triggers the daemon uses (not from a
running scheduler), so ``status`` answers whether or not the daemon is up.
The delivery ledger (``deliveries``) and feed state (``feed_state``) tables
belong to other features; they are read by reflection when present, so this
module does not depend on their code.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from digestbot.config import Settings, parse_duration
from digestbot.delivery.outcomes import form_note
from digestbot.ingest import in_drops_folder
from digestbot.lock import HEARTBEAT_SECONDS, LOCK_NAME
from digestbot.redact import redact_urls
from digestbot.sources.drops import drop_path
from digestbot.store import SqlStore
from digestbot.store.daemon import load_job_health, load_lock
from digestbot.store.slack import load_personal_profiles
from digestbot.store.sql import utc
from digestbot.store.subscribers import load_subscribers
from digestbot.timing import build_trigger, last_fire_time, next_fire_time

LEDGER_TABLE = "deliveries"
FEED_TABLE = "feed_state"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (utc(value) or value).isoformat()
    return str(value.isoformat()) if hasattr(value, "isoformat") else str(value)


def _reflect(store: SqlStore, name: str) -> sa.Table | None:
    with store.transaction() as conn:
        if not sa.inspect(conn).has_table(name):
            return None
        return sa.Table(name, sa.MetaData(), autoload_with=conn)


def load_last_deliveries(store: SqlStore) -> list[dict[str, Any]]:
    """Per (profile, destination), its most recent digest from the ledger; [] without one."""
    table = _reflect(store, LEDGER_TABLE)
    if table is None:
        return []
    rank = (
        sa.func.row_number()
        .over(
            partition_by=(table.c.profile, table.c.destination),
            order_by=(table.c.digest_date.desc(), table.c.pk.desc()),
        )
        .label("rank")
    )
    latest = sa.select(table, rank).subquery()
    query = (
        sa.select(latest).where(latest.c.rank == 1).order_by(latest.c.profile, latest.c.destination)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).mappings().all()
    return [_delivery(row) for row in rows]


def load_open_digests(store: SqlStore) -> list[dict[str, Any]]:
    """Digests not delivered yet: ``pending`` (being sent or interrupted) and ``failed``."""
    table = _reflect(store, LEDGER_TABLE)
    if table is None:
        return []
    query = (
        sa.select(table)
        .where(table.c.status.in_(("pending", "failed")))
        .order_by(table.c.digest_date.desc(), table.c.profile, table.c.destination)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).mappings().all()
    return [_delivery(row) for row in rows]


REJECTED_DAYS = 7  # rejected digests dated this many days back are listed


def load_rejected_digests(store: SqlStore, *, since: date) -> list[dict[str, Any]]:
    """Digests Slack or the mail server refused for their content (``rejected``: settled,
    not retried), dated ``since`` or later, newest first."""
    table = _reflect(store, LEDGER_TABLE)
    if table is None:
        return []
    query = (
        sa.select(table)
        .where(table.c.status == "rejected", table.c.digest_date >= since)
        .order_by(table.c.digest_date.desc(), table.c.profile, table.c.destination)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).mappings().all()
    return [_delivery(row) for row in rows]


def _note(row: Any) -> str | None:
    """How a sent digest went out when not as formatted (the plain-text fallback)."""
    try:
        progress = json.loads(row.get("progress") or "{}")
    except ValueError:
        return None
    if not isinstance(progress, dict):
        return None
    return form_note(row["destination"], progress) or None


def _delivery(row: Any) -> dict[str, Any]:
    return {
        "profile": row["profile"],
        "destination": row["destination"],
        "digest_id": row["digest_id"],
        "digest_date": _iso(row["digest_date"]),
        "status": row["status"],
        "papers": row.get("paper_count"),
        "attempts": row.get("attempts"),
        "error": row.get("error"),
        "sent_at": _iso(row.get("sent_at")),
        "updated_at": _iso(row.get("updated_at")),
        "note": _note(row),
    }


def _redacted(error: str | None) -> str | None:
    """An error as shown: a feed URL's credentials hidden (older versions stored them)."""
    return None if error is None else redact_urls(error)


def load_feed_health(store: SqlStore) -> list[dict[str, Any]]:
    """Each feed's last success and error, as the feeds service records them; [] without."""
    table = _reflect(store, FEED_TABLE)
    if table is None:
        return []
    with store.transaction() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.name)).mappings().all()
    return [
        {
            "name": row["name"],
            "last_status": row.get("last_status"),
            "last_success": _iso(row.get("last_success")),
            "last_error": _redacted(row.get("last_error")),
            "last_error_at": _iso(row.get("last_error_at")),
            "consecutive_failures": row.get("consecutive_failures"),
            "items_seen": row.get("items_seen"),
        }
        for row in rows
    ]


# a title vector's cost in the worker's time, against a title + abstract vector's (MiniLM-L6 on
# 2 cores: ~15 papers/s at 256 tokens, ~170-280 titles/s; bench/relevance_embed.py)
TITLE_COST = 0.1


def load_embedding_status(
    settings: Settings, store: SqlStore, *, now: datetime, heartbeat_seconds: float
) -> dict[str, Any] | None:
    """The configured model's vectors: how many stored, how many missing (papers, and their
    title vectors unless ``ranking.title_weight`` is 0: None then), and what the daemon's
    background worker is doing. None without a model (lexical ranking only).
    Reads the database only: torch is never imported here."""
    from digestbot.ranking.semantic import TITLE, model_key, vector_kinds
    from digestbot.store.embeddings import (
        count_embeddings,
        count_missing_sets,
        load_worker_state,
    )

    worker = load_worker_state(store)
    model = model_key(settings.ranking.embedding_model) or (worker.model if worker else None)
    if model is None:
        return None
    kinds = vector_kinds(settings.ranking)
    titles = TITLE in kinds
    keys = [kind.key(model) for kind in kinds]  # counted in one pass over the papers
    missing_sets = count_missing_sets(store, models=keys)
    missing = missing_sets[model]
    report: dict[str, Any] = {
        "model": model,
        "papers_embedded": count_embeddings(store, model=model),
        "papers_missing": missing,
        "titles_embedded": count_embeddings(store, model=keys[1]) if titles else None,
        "titles_missing": missing_sets[keys[1]] if titles else None,
        "backlog": settings.ranking.embed_backlog,
        "worker": None,
    }
    if worker is not None and worker.model == model:
        # its heartbeat is written on the database's clock: judged on it (``age``), as the lock's
        stale = worker.age is None or worker.age > timedelta(seconds=3 * heartbeat_seconds)
        running = worker.state not in ("stopped",) and not stale
        rate = worker.papers_per_second
        since = {
            "recent": now - timedelta(days=settings.ranking.embed_since_days),
            "none": worker.started_at,
        }.get(settings.ranking.embed_backlog)
        in_scope = (
            missing_sets if since is None else count_missing_sets(store, models=keys, since=since)
        )
        todo = in_scope[model]
        titles_todo = in_scope[keys[1]] if titles else 0
        work = todo + TITLE_COST * titles_todo
        report["worker"] = {
            "holder": worker.holder,
            "state": worker.state if running or worker.state == "stopped" else "gone",
            "embedded": worker.embedded,
            "papers_per_second": rate,
            "started_at": _iso(worker.started_at),
            "updated_at": _iso(worker.updated_at),
            "error": worker.error,
            "to_embed": todo,  # missing papers within ranking.embed_backlog
            "titles_to_embed": titles_todo if titles else None,  # their title vectors
            "eta_seconds": round(work / rate) if running and rate and work else None,
        }
    return report


def build_status(
    settings: Settings,
    store: SqlStore,
    *,
    now: datetime,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> dict[str, Any]:
    grace = timedelta(seconds=parse_duration(settings.misfire_grace))
    profiles = []
    for profile in settings.profiles:
        zone = build_trigger(profile.schedule).timezone
        upcoming = next_fire_time(profile.schedule, now=now)
        due = last_fire_time(profile.schedule, now=now, grace=grace)
        profiles.append(
            {
                "name": profile.name,
                "cron": profile.schedule.cron,
                "timezone": profile.schedule.timezone,
                "next_run": _iso(upcoming),
                "next_run_local": upcoming.astimezone(zone).isoformat() if upcoming else None,
                "due_since": _iso(due),
            }
        )
    personal = []
    for person in load_personal_profiles(store):  # /papers follow: daily by direct message
        schedule = person.as_schedule()
        upcoming = next_fire_time(schedule, now=now)
        personal.append(
            {
                "user": person.user_id,
                "time": person.delivery_time,
                "timezone": person.timezone,
                "terms": list(person.terms),
                "next_run": _iso(upcoming),
                "next_run_local": upcoming.astimezone(build_trigger(schedule).timezone).isoformat()
                if upcoming
                else None,
            }
        )
    lock = load_lock(store, LOCK_NAME)
    configured_feeds = {feed.name for feed in settings.feeds}
    # an unsent digest whose profile or destination is gone is never retried: listed apart
    from digestbot.delivery.targets import load_live_destinations

    live = load_live_destinations(settings, store)
    unsent = load_open_digests(store)
    orphaned = [d for d in unsent if (d["profile"], d["destination"]) not in live]
    gone = {d["digest_id"] for d in orphaned}
    return {
        "now": now.isoformat(),
        "profiles": profiles,
        "personal": personal,
        # as feeds: the live destinations only (a removed one's last error is no news)
        "deliveries": [
            d for d in load_last_deliveries(store) if (d["profile"], d["destination"]) in live
        ],
        "open_digests": [d for d in unsent if d["digest_id"] not in gone],
        "orphaned_digests": orphaned,
        "rejected_digests": load_rejected_digests(
            store, since=now.date() - timedelta(days=REJECTED_DAYS)
        ),
        "files": [
            {
                "path": f.path,
                "status": f.status,
                "ingested_at": _iso(f.ingested_at),
                "papers_new": f.papers_new,
                "papers_merged": f.papers_merged,
                "error": f.error,
            }
            for f in store.recent_files(limit=10)
        ],
        # drops that failed and were not ingested since; a file deleted since is no news,
        # nor one outside the drops folder (``ingest PATH`` reported it)
        "failed_drops": [
            {"path": f.path, "failed_at": _iso(f.ingested_at), "error": f.error}
            for f in sorted(store.failed_files().values(), key=lambda f: f.path)
            if drop_path(f.path).exists() and in_drops_folder(f.path, settings.drops.path)
        ],
        # the configured feeds only: one removed from the config is no longer polled
        "feeds": [f for f in load_feed_health(store) if f["name"] in configured_feeds],
        "bounced_subscribers": [
            {
                "profile": b.profile,
                "email": b.address,
                "since": _iso(b.updated_at),
                "error": b.error,
            }
            for b in load_subscribers(store, statuses=("bounced",))
        ],
        "sources": [
            {
                "name": h.name,
                "consecutive_failures": h.consecutive_failures,
                "last_ok_at": _iso(h.last_ok_at),
                "last_failed_at": _iso(h.last_failed_at),
                "last_error": _redacted(h.last_error),
            }
            for h in load_job_health(store)
            # as feeds: a feed removed from the config is no longer polled nor news
            if not h.name.startswith("feed:") or h.name.removeprefix("feed:") in configured_feeds
        ],
        "embeddings": load_embedding_status(
            settings, store, now=now, heartbeat_seconds=heartbeat_seconds
        ),
        "scheduler": None
        if lock is None
        else {
            "holder": lock.holder,
            "acquired_at": _iso(lock.acquired_at),
            "heartbeat_at": _iso(lock.heartbeat_at),
            # judged on the database's clock: the daemon's host and this one may disagree
            "stale": (lock.age if lock.age is not None else now - lock.heartbeat_at)
            > timedelta(seconds=3 * heartbeat_seconds),
        },
    }
