"""When a profile's digest is due: cron triggers, next and most recent fire times.

Pure functions of a ``Schedule`` and ``now``; the daemon, ``run --once`` and
``status`` all use these, so what ``status`` shows is what the daemon does.

Cron expressions follow crontab(5): in the day-of-week field ``0`` and ``7`` are
Sunday. APScheduler 3.x counts ``0`` as Monday (a historical mismatch it keeps
for compatibility), so numeric days are translated to names before it sees them.
And when both the day of month and the day of week are restricted (neither starts
with ``*``), a day matching *either* fires, as cron does (``0 8 1 * mon``: the 1st
and every Monday); APScheduler alone wants both, so that is two triggers, or-ed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger

from digestbot.config import Schedule, Settings
from digestbot.errors import ConfigError

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_NAME_INDEX = {name: i for i, name in enumerate(_DAY_NAMES)}
_STEP = timedelta(seconds=1)
_MICRO = timedelta(microseconds=1)


def _day_number(token: str, *, field: str) -> int:
    token = token.strip().lower()
    if token in _NAME_INDEX:
        return _NAME_INDEX[token]
    if token.isdigit() and 0 <= int(token) <= 7:
        return int(token) % 7
    raise ConfigError(f"bad day of week {token!r} in {field!r}", key="schedule.cron")


def parse_days_of_week(field: str) -> str:
    """A crontab day-of-week field -> APScheduler's names (``1-5`` -> ``mon,tue,wed,thu,fri``)."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else 0
        if step_text and not step:
            raise ConfigError(f"bad step in day of week {field!r}", key="schedule.cron")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-", 1)
            first, last = _day_number(low, field=field), _day_number(high, field=field)
            if last == 0 and first > 0:  # ``5-7``, ``fri-sun``: up to Sunday
                last = 7
            if last < first:
                raise ConfigError(f"bad range in day of week {field!r}", key="schedule.cron")
        else:
            first = last = _day_number(base, field=field)
        days.update(day % 7 for day in range(first, last + 1, step or 1))
    # APScheduler's week starts on Monday; list the names in that order for a readable trigger
    return ",".join(_DAY_NAMES[d] for d in sorted(days, key=lambda d: (d - 1) % 7))


def check_schedules(settings: Settings) -> None:
    """Every profile's schedule builds a trigger; else a ``ConfigError`` naming the config
    file and ``profiles.N.schedule.cron`` (the config's own validation checks only the
    five fields' count: APScheduler is not imported by every command)."""
    for index, profile in enumerate(settings.profiles):
        try:
            build_trigger(profile.schedule)
        except ConfigError as exc:
            raise ConfigError(
                f"{exc.detail} (profile {profile.name!r})",
                path=settings.source,
                key=f"profiles.{index}.schedule.cron",
            ) from None


class WallClockCronTrigger(CronTrigger):  # type: ignore[misc]
    """APScheduler's cron trigger, except on a day whose fire time the clocks skip at
    midnight itself (Cairo, Santiago, Havana spring forward from 00:00 to 01:00): there
    APScheduler finds no valid hour left in the day and goes on to the next one, so the
    day had no digest. Such a time fires once, an hour later, as a skipped 02:30 elsewhere
    does (``fold=0``: the wall time read with the offset before the change)."""

    def __init__(self, **fields: Any) -> None:
        super().__init__(**fields)
        # the same fields on a clock without changes: the wall times the schedule asks for
        self._wall = CronTrigger(**{**fields, "timezone": UTC})

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        fire: datetime | None = super().get_next_fire_time(previous_fire_time, now)
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + _MICRO)
            if start == previous_fire_time:
                start += _MICRO
        wall_start = start.astimezone(self.timezone).replace(tzinfo=UTC)
        wall: datetime | None = self._wall.get_next_fire_time(None, wall_start)
        if wall is None:
            return fire
        zone: tzinfo = self.timezone
        real = wall.replace(tzinfo=zone).astimezone(UTC)  # fold 0
        if real >= start.astimezone(UTC) and (fire is None or real < fire):
            return real.astimezone(zone)
        return fire


class EitherDayTrigger(OrTrigger):  # type: ignore[misc]
    """Fires when either of its cron triggers does (one by day of month, one by day of
    week); has their ``timezone`` as a ``CronTrigger`` does."""

    def __init__(self, by_day: CronTrigger, by_weekday: CronTrigger) -> None:
        super().__init__([by_day, by_weekday])
        self.timezone = by_day.timezone


def build_trigger(schedule: Schedule) -> CronTrigger | EitherDayTrigger:
    """The APScheduler trigger for a profile's schedule (wall-clock time in its timezone)."""
    minute, hour, day, month, day_of_week = schedule.cron.split()

    def cron(day: str, day_of_week: str) -> CronTrigger:
        return WallClockCronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=parse_days_of_week(day_of_week),
            timezone=schedule.timezone,
        )

    try:
        if day.startswith("*") or day_of_week.startswith("*"):
            return cron(day, day_of_week)
        return EitherDayTrigger(cron(day, "*"), cron("*", day_of_week))
    except ValueError as exc:
        raise ConfigError(f"bad cron {schedule.cron!r}: {exc}", key="schedule.cron") from None


def next_fire_time(schedule: Schedule, *, now: datetime) -> datetime | None:
    """The first fire time strictly after ``now``, in UTC."""
    fire = build_trigger(schedule).get_next_fire_time(None, now.astimezone(UTC) + _STEP)
    return fire.astimezone(UTC) if fire is not None else None


def fire_times(schedule: Schedule, *, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in ``[start, end]``, in UTC, oldest first."""
    trigger = build_trigger(schedule)
    found: list[datetime] = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire <= end:
        found.append(fire.astimezone(UTC))
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + _STEP)
    return found


def last_fire_time(schedule: Schedule, *, now: datetime, grace: timedelta) -> datetime | None:
    """The most recent fire time at or before ``now`` and no older than ``grace``, in UTC.

    A digest is due when this is not ``None``; whether it was already sent is the
    ledger's business, not the scheduler's.
    """
    trigger = build_trigger(schedule)
    fire = trigger.get_next_fire_time(None, now.astimezone(UTC) - grace)
    latest: datetime | None = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + _STEP)
    return latest.astimezone(UTC) if latest is not None else None


def send_time(schedule: Schedule, *, fire: datetime, now: datetime) -> datetime:
    """The ``as_of`` to give the delivery service for a digest that fired at ``fire``.

    The service's digest date is the date of ``as_of`` in the schedule's zone, so a
    catch-up that crosses midnight there must speak of the fire time; otherwise the
    real time. The service's ``now`` stays the real time either way: the ledger's
    timestamps and leases (a lease taken at a fire time an hour ago would have run out
    already, and another run would take the digest over while it is being sent).
    """
    zone = build_trigger(schedule).timezone
    return now if now.astimezone(zone).date() == fire.astimezone(zone).date() else fire
