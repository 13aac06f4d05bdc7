"""``digestbot check``: what a loaded config would meet when it runs, without running it.

Loading the file already validates every key and value (a bad one is an error naming the
file and key before any check runs). The checks here need more than the file: each
profile's cron built as the scheduler builds it, the templates parsed, a destination's
credentials present, the drops folder there, the embedding model installed, the database
reachable and at a schema this version can use. Nothing is written: a missing SQLite file
is not created, an older schema is not upgraded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jinja2
import sqlalchemy as sa

from digestbot.config import Settings
from digestbot.errors import ConfigError, DigestError
from digestbot.redact import redact_url, redact_urls

if TYPE_CHECKING:
    from digestbot.store import SqlStore

Level = Literal["ok", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    level: Level
    key: str  # the config key (or part) it is about
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "key": self.key, "message": self.message}


def check_settings(settings: Settings, *, now: datetime) -> list[Finding]:
    """Every finding, in the order of the config's sections."""
    return [
        *_schedules(settings),
        *_templates(settings),
        *_destinations(settings),
        *_alerts(settings),
        *_drops(settings),
        *_ranking(settings),
        *_database(settings),
        *_weekly(settings, now=now),
        *_likes(settings),
    ]


def _schedules(settings: Settings) -> Iterator[Finding]:
    from digestbot.timing import build_trigger

    for index, profile in enumerate(settings.profiles):
        key = f"profiles.{index}.schedule.cron"
        try:
            build_trigger(profile.schedule)
        except ConfigError as exc:
            yield Finding("error", key, f"{exc.detail} (profile {profile.name!r})")
            continue
        zone = profile.schedule.timezone
        yield Finding("ok", key, f"{profile.schedule.cron!r} in {zone} (profile {profile.name!r})")


def _templates(settings: Settings) -> Iterator[Finding]:
    from digestbot.render import build_environment

    env = build_environment(settings.templates_dir)
    key = "templates_dir"
    if settings.templates_dir is not None and not settings.templates_dir.is_dir():
        yield Finding("error", key, f"{settings.templates_dir} is not a folder")
        return
    names = [name for name in env.list_templates() if name.endswith(".j2")]
    bad = 0
    for name in names:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as exc:
            bad += 1
            where = exc.filename or name
            yield Finding("error", key, f"{where}, line {exc.lineno}: {exc.message}")
    if not bad:
        where = str(settings.templates_dir or "the shipped templates")
        yield Finding("ok", key, f"{len(names)} templates parse ({where})")


def _destinations(settings: Settings) -> Iterator[Finding]:
    emails = False
    for index, profile in enumerate(settings.profiles):
        for number, target in enumerate(profile.deliver):
            key = f"profiles.{index}.deliver.{number}"
            if (
                target.slack is not None
                and target.slack.channel
                and settings.slack.bot_token is None
            ):
                yield Finding(
                    "error",
                    f"{key}.slack.channel",
                    f"posting to {target.slack.channel} needs slack.bot_token "
                    f"(profile {profile.name!r}); a webhook_url needs no token",
                )
            if target.email is not None:
                emails = True
    if emails:
        smtp = settings.email.smtp
        yield Finding(
            "ok", "email.smtp", f"email goes through {smtp.host}:{smtp.port} ({smtp.security})"
        )
        if settings.email.unsubscribe_secret is None or settings.server.public_url is None:
            yield Finding(
                "warning",
                "email.unsubscribe_secret",
                "email.unsubscribe_secret and server.public_url are needed for one-click "
                "unsubscribe links; without them the List-Unsubscribe header is mailto only",
            )


def _alerts(settings: Settings) -> Iterator[Finding]:
    if settings.alerts.slack_channel and settings.slack.bot_token is None:
        yield Finding(
            "warning",
            "alerts.slack_channel",
            "set, but slack.bot_token is not: no Slack alerts will be sent",
        )


def _drops(settings: Settings) -> Iterator[Finding]:
    path = settings.drops.path
    if path.is_dir():
        count = sum(1 for item in path.rglob("*") if item.is_file())
        yield Finding("ok", "drops.path", f"{path} ({count} files)")
    elif path.exists():
        yield Finding("error", "drops.path", f"{path} is not a folder")
    else:
        yield Finding(
            "warning", "drops.path", f"{path} does not exist: no drop is read until it does"
        )


def _ranking(settings: Settings) -> Iterator[Finding]:
    from digestbot.ranking.semantic import AUTO, resolve_model, why_no_model

    setting = settings.ranking.embedding_model
    key = "ranking.embedding_model"
    model = resolve_model(setting)
    if model:
        yield Finding("ok", key, f"semantic ranking with {model}")
    elif setting and setting != AUTO:
        yield Finding("error", key, why_no_model(setting))
    else:
        yield Finding("ok", key, f"lexical ranking: {why_no_model(setting)}")


def _database(settings: Settings) -> Iterator[Finding]:
    from digestbot.store import SqlStore
    from digestbot.store.schema import SCHEMA_VERSION, schema_info, stored_version

    url = settings.database_url
    key = "database_url"
    shown = redact_url(url)
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        path = Path(url[len("sqlite:///") :])
        if not path.exists():
            yield Finding("ok", key, f"{path} does not exist yet: the first command creates it")
            return
    try:
        store = SqlStore.open(url, create=False)
    except DigestError as exc:
        yield Finding("error", key, redact_urls(str(exc)))
        return
    try:
        with store.engine.connect() as conn:
            if not sa.inspect(conn).has_table(schema_info.name):
                yield Finding(
                    "ok", key, f"{shown}: reachable, empty (the first command creates the tables)"
                )
                return
            version = stored_version(conn)
    except sa.exc.SQLAlchemyError as exc:
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
        reason = redact_urls(str(cause).splitlines()[0] if str(cause) else type(cause).__name__)
        yield Finding("error", key, f"{shown}: {reason}")
        return
    finally:
        store.close()
    if version is None or int(version) == SCHEMA_VERSION:
        yield Finding("ok", key, f"{shown}: schema version {SCHEMA_VERSION}")
    elif int(version) < SCHEMA_VERSION:
        yield Finding(
            "warning",
            key,
            f"{shown}: schema version {version}; the next command upgrades it to "
            f"{SCHEMA_VERSION} (stop older digestbot processes first)",
        )
    else:
        yield Finding(
            "error",
            key,
            f"{shown}: schema version {version} is newer than this digestbot's "
            f"({SCHEMA_VERSION}): upgrade digestbot",
        )


WEEKS_LOOKED_AT = 8  # a cron that sends on the weekly day at all does so within 8 weeks


def _sends_on(settings: Settings, index: int, *, weekday: str, now: datetime) -> bool:
    """Whether profile ``index``'s schedule fires on ``weekday`` (its zone) in the coming weeks."""
    from zoneinfo import ZoneInfo

    from digestbot.newsletter import WEEKDAYS
    from digestbot.timing import fire_times

    profile = settings.profiles[index]
    zone = ZoneInfo(profile.schedule.timezone)
    fires = fire_times(profile.schedule, start=now, end=now + timedelta(weeks=WEEKS_LOOKED_AT))
    return any(WEEKDAYS[fire.astimezone(zone).weekday()] == weekday for fire in fires)


@contextmanager
def _existing_store(settings: Settings) -> Iterator[SqlStore | None]:
    """The configured database, opened only if it exists and opens (never created or
    upgraded: a check changes nothing); None otherwise (the database check reports why)."""
    from digestbot.store import SqlStore

    url = settings.database_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).exists():
        yield None
        return
    try:
        store = SqlStore.open(url, create=False)
    except DigestError:
        yield None
        return
    try:
        yield store
    finally:
        store.close()


def _weekly(settings: Settings, *, now: datetime) -> Iterator[Finding]:
    """Weekly subscribers get their digest only from a send on ``email.weekly_day``: a
    profile whose schedule never sends on that day never mails them (read from an existing
    database only; nothing is created or upgraded)."""
    from digestbot.store.subscribers import subscribers

    with _existing_store(settings) as store:
        if store is None:
            return
        try:
            with store.engine.connect() as conn:
                if not sa.inspect(conn).has_table(subscribers.name):
                    return
                query = (
                    sa.select(subscribers.c.profile, sa.func.count())
                    .where(subscribers.c.cadence == "weekly", subscribers.c.status == "active")
                    .group_by(subscribers.c.profile)
                )
                weekly = {str(profile): int(count) for profile, count in conn.execute(query)}
        except sa.exc.SQLAlchemyError:
            return  # reported by the database check
    day = settings.email.weekly_day
    for index, profile in enumerate(settings.profiles):
        count = weekly.get(profile.name, 0)
        try:
            sends = _sends_on(settings, index, weekday=day, now=now)
        except ConfigError:
            continue  # a bad cron: reported by the schedules' check
        if count and not sends:
            schedule = profile.schedule
            yield Finding(
                "warning",
                "email.weekly_day",
                f"profile {profile.name!r} has {count} weekly subscriber(s), but its schedule "
                f"({schedule.cron!r}, {schedule.timezone}) never sends on a {day}: they get no "
                "digest (set email.weekly_day to a day it sends on)",
            )


def _likes(settings: Settings) -> Iterator[Finding]:
    """A ``like`` entry that names no stored paper (a typo in a title, a paper never
    ingested) is left out of the ranking with only a log line at each rank; a profile with
    nothing else to rank by then sends empty digests. Read from an existing database at
    this schema version with papers in it (before the first ingest nothing is stored)."""
    from digestbot.store.ranking import resolve_paper_pks
    from digestbot.store.schema import SCHEMA_VERSION, papers, stored_version

    wanted = [(i, p) for i, p in enumerate(settings.profiles) if p.like]
    if not wanted:
        return
    with _existing_store(settings) as store:
        if store is None:
            return
        try:
            with store.engine.connect() as conn:
                if not sa.inspect(conn).has_table(papers.name):
                    return
                if stored_version(conn) != str(SCHEMA_VERSION):
                    return  # an older schema is not read (nor upgraded) here
                if conn.execute(sa.select(papers.c.pk).limit(1)).first() is None:
                    return
            found = resolve_paper_pks(store, [name for _, p in wanted for name in p.like])
        except (sa.exc.SQLAlchemyError, DigestError):
            return  # reported by the database check
    for index, profile in wanted:
        missing = [name for name in profile.like if name not in found]
        if not missing:
            continue
        names = ", ".join(repr(name) for name in missing)
        message = (
            f"profile {profile.name!r}: {len(missing)} of {len(profile.like)} liked papers are "
            f"not in the store (a paper id or its exact title): {names}; ranked without them"
        )
        if len(missing) == len(profile.like) and not profile.keywords and not profile.description:
            message += ", it has nothing to rank by and its digests stay empty"
        yield Finding("warning", f"profiles.{index}.like", message)
