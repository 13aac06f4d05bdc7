"""Fire times: the right UTC instant in several time zones, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from digestbot.config import Schedule
from digestbot.errors import ConfigError
from digestbot.timing import fire_times, last_fire_time, next_fire_time, parse_days_of_week


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "zone", "start", "end", "expected"),
    [
        # Berlin: CET (UTC+1) until 2026-03-29 01:00 UTC, then CEST (UTC+2); weekdays only
        (
            "0 8 * * mon-fri",
            "Europe/Berlin",
            utc(2026, 3, 26),
            utc(2026, 3, 31, 23),
            [utc(2026, 3, 26, 7), utc(2026, 3, 27, 7), utc(2026, 3, 30, 6), utc(2026, 3, 31, 6)],
        ),
        # Berlin in autumn: back to UTC+1 on 2026-10-25
        (
            "0 8 * * *",
            "Europe/Berlin",
            utc(2026, 10, 24),
            utc(2026, 10, 26, 23),
            [utc(2026, 10, 24, 6), utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)],
        ),
        # New York: EST (UTC-5) until 2026-03-08 07:00 UTC, then EDT (UTC-4)
        (
            "30 7 * * *",
            "America/New_York",
            utc(2026, 3, 7),
            utc(2026, 3, 9, 23),
            [utc(2026, 3, 7, 12, 30), utc(2026, 3, 8, 11, 30), utc(2026, 3, 9, 11, 30)],
        ),
        # Kolkata: UTC+5:30, no daylight saving
        (
            "0 9 * * *",
            "Asia/Kolkata",
            utc(2026, 6, 1),
            utc(2026, 6, 2, 23),
            [utc(2026, 6, 1, 3, 30), utc(2026, 6, 2, 3, 30)],
        ),
        # Auckland: NZDT (UTC+13) ends 2026-04-05 03:00 local, then NZST (UTC+12)
        (
            "0 8 * * *",
            "Pacific/Auckland",
            utc(2026, 4, 3),
            utc(2026, 4, 5, 23),
            [utc(2026, 4, 3, 19), utc(2026, 4, 4, 20), utc(2026, 4, 5, 20)],
        ),
        # the default: daily 08:00 UTC
        (
            "0 8 * * *",
            "UTC",
            utc(2026, 11, 23),
            utc(2026, 11, 24, 23),
            [utc(2026, 11, 23, 8), utc(2026, 11, 24, 8)],
        ),
    ],
)
def test_fire_times_are_the_right_utc_instants(
    cron: str, zone: str, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    assert fire_times(Schedule(cron=cron, timezone=zone), start=start, end=end) == expected


def test_a_time_skipped_by_spring_forward_still_fires_once_that_day() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: the digest goes out at 03:30 CEST
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    found = fire_times(schedule, start=utc(2026, 3, 28), end=utc(2026, 3, 30, 23))
    assert found == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)]


@pytest.mark.parametrize(
    ("zone", "cron", "start", "end", "expected"),
    [
        # Cairo: 2026-04-24 00:00 EET (UTC+2) is 01:00 EEST (UTC+3); 00:30 does not exist
        (
            "Africa/Cairo",
            "30 0 * * *",
            utc(2026, 4, 22, 12),
            utc(2026, 4, 25, 12),
            [utc(2026, 4, 22, 22, 30), utc(2026, 4, 23, 22, 30), utc(2026, 4, 24, 21, 30)],
        ),
        # Santiago: 2026-09-06 00:00 (UTC-4) is 01:00 (UTC-3); midnight itself is skipped
        (
            "America/Santiago",
            "0 0 * * *",
            utc(2026, 9, 5),
            utc(2026, 9, 7, 12),
            [utc(2026, 9, 5, 4), utc(2026, 9, 6, 4), utc(2026, 9, 7, 3)],
        ),
    ],
)
def test_a_time_skipped_at_midnight_still_fires_once_that_day(
    zone: str, cron: str, start: datetime, end: datetime, expected: list[datetime]
) -> None:
    # where clocks skip midnight itself, APScheduler skipped the whole day: no digest that
    # day (the README promises the skipped time fires once, an hour later, as elsewhere)
    schedule = Schedule(cron=cron, timezone=zone)
    found = fire_times(schedule, start=start, end=end)
    assert found == expected
    assert next_fire_time(schedule, now=expected[0]) == expected[1]
    assert (
        last_fire_time(schedule, now=expected[1] + timedelta(hours=1), grace=timedelta(hours=6))
        == (expected[1])
    )


def test_a_repeated_hour_in_autumn_does_not_loop_forever() -> None:
    schedule = Schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    found = fire_times(schedule, start=utc(2026, 10, 24, 12), end=utc(2026, 10, 26, 12))
    # 02:30 happens twice on 2026-10-25 (CEST, then CET); the ledger keeps it one digest
    assert found == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30), utc(2026, 10, 26, 1, 30)]


def test_numeric_weekdays_follow_crontab_not_apscheduler() -> None:
    # crontab: 1-5 is Monday to Friday, 0 and 7 are Sunday (APScheduler 3 would read 0 as Monday)
    assert parse_days_of_week("1-5") == "mon,tue,wed,thu,fri"
    assert parse_days_of_week("0") == "sun"
    assert parse_days_of_week("7") == "sun"
    assert parse_days_of_week("5-7") == "fri,sat,sun"
    assert parse_days_of_week("sat,sun") == "sat,sun"
    week = fire_times(
        Schedule(cron="0 8 * * 1-5"), start=utc(2026, 11, 22), end=utc(2026, 11, 29, 23)
    )
    assert [d.strftime("%a %d") for d in week] == ["Mon 23", "Tue 24", "Wed 25", "Thu 26", "Fri 27"]
    sundays = fire_times(
        Schedule(cron="0 8 * * 0"), start=utc(2026, 11, 22), end=utc(2026, 11, 29, 23)
    )
    assert sundays == [utc(2026, 11, 22, 8), utc(2026, 11, 29, 8)]


@pytest.mark.parametrize("field", ["8", "mon-xyz", "*/0", "fri-mon"])
def test_bad_day_of_week_names_the_field(field: str) -> None:
    with pytest.raises(ConfigError, match=r"schedule\.cron"):
        parse_days_of_week(field)


def test_bad_cron_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="bad cron"):
        next_fire_time(Schedule(cron="61 8 * * *"), now=utc(2026, 11, 23))


def test_next_fire_time_is_strictly_after_now() -> None:
    schedule = Schedule(cron="0 8 * * mon-fri", timezone="Europe/Berlin")
    # Friday 2026-11-27 07:00 UTC is exactly 08:00 in Berlin: the next one is Monday
    assert next_fire_time(schedule, now=utc(2026, 11, 27, 7)) == utc(2026, 11, 30, 7)
    assert next_fire_time(schedule, now=utc(2026, 11, 27, 6, 59)) == utc(2026, 11, 27, 7)


def test_last_fire_time_only_within_the_grace() -> None:
    schedule = Schedule(cron="0 8 * * mon-fri", timezone="Europe/Berlin")
    grace = timedelta(hours=6)
    assert last_fire_time(schedule, now=utc(2026, 11, 23, 12, 59), grace=grace) == utc(
        2026, 11, 23, 7
    )
    assert last_fire_time(schedule, now=utc(2026, 11, 23, 7), grace=grace) == utc(2026, 11, 23, 7)
    assert last_fire_time(schedule, now=utc(2026, 11, 23, 13, 1), grace=grace) is None
    assert last_fire_time(schedule, now=utc(2026, 11, 23, 6, 59), grace=grace) is None
    # Saturday morning: Friday's digest is long past the grace
    assert last_fire_time(schedule, now=utc(2026, 11, 28, 8), grace=grace) is None


def test_day_of_month_and_day_of_week_both_given_fire_on_either_as_in_crontab() -> None:
    # crontab(5): "0 8 1 * mon" is the 1st of each month *and* every Monday (APScheduler alone
    # would fire only on Mondays that are the 1st: 2026-06-01, then 2027-02-01)
    schedule = Schedule(cron="0 8 1 * mon", timezone="Europe/Berlin")
    assert fire_times(schedule, start=utc(2026, 6, 25), end=utc(2026, 7, 8)) == [
        utc(2026, 6, 29, 6),  # Monday
        utc(2026, 7, 1, 6),  # Wednesday, the 1st
        utc(2026, 7, 6, 6),  # Monday
    ]
    assert next_fire_time(schedule, now=utc(2026, 7, 1, 6)) == utc(2026, 7, 6, 6)
    assert last_fire_time(schedule, now=utc(2026, 7, 1, 9), grace=timedelta(hours=6)) == utc(
        2026, 7, 1, 6
    )
    # a field starting with "*" is not a restriction (cron's rule): both must match then
    every_other = Schedule(cron="0 8 */2 * mon", timezone="UTC")
    assert fire_times(every_other, start=utc(2026, 6, 1), end=utc(2026, 6, 30, 23)) == [
        utc(2026, 6, 1, 8),
        utc(2026, 6, 15, 8),
        utc(2026, 6, 29, 8),
    ]
