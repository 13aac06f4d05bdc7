"""The daemon's decisions with a fixed clock: what is due, catch-up, restarts, alerts, errors."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestbot.alerts import Alert, Alerter
from digestbot.config import Settings, load_settings, parse_settings
from digestbot.scheduler import Daemon
from digestbot.store import SqlStore
from digestbot.store.daemon import load_job_health, load_lock
from tests.daemon.fakes import LedgerSend, ledger_rows

MONDAY_0930 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)  # 10:30 in Berlin
BERLIN_FIRE = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)  # 08:00 in Berlin


class Recorder:
    """A notifier that keeps what it was told."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def make_settings(tmp_path: Path, **extra: Any) -> Settings:
    (tmp_path / "drops").mkdir(exist_ok=True)
    data: dict[str, Any] = {
        "drops": {"path": "drops", "poll_seconds": 0.2, "settle_seconds": 0.0},
        "profiles": [
            {
                "name": "attn",
                "keywords": ["attention"],
                "schedule": {"cron": "0 8 * * mon-fri", "timezone": "Europe/Berlin"},
            },
            {"name": "late", "keywords": ["vision"], "schedule": {"cron": "0 20 * * *"}},
        ],
    }
    data.update(extra)
    return parse_settings(data, base=tmp_path, env={})


def make_daemon(
    settings: Settings,
    store: SqlStore,
    send: LedgerSend,
    *,
    now: datetime = MONDAY_0930,
    notifier: Recorder | None = None,
) -> Daemon:
    alerter = Alerter(
        store, notifier or Recorder(), source_failures=settings.alerts.source_failures
    )
    return Daemon(settings, store, send=send, alerter=alerter, clock=lambda: now)


def serve_until(daemon: Daemon, event: threading.Event, timeout: float = 10.0) -> None:
    """Run the daemon on a thread until ``event`` (or the timeout), then stop it."""
    thread = threading.Thread(target=daemon.serve, kwargs={"drain_seconds": 5.0})
    thread.start()
    try:
        event.wait(timeout)
    finally:
        daemon.request_stop()
        thread.join(15)
    assert not thread.is_alive()


def test_run_once_sends_only_the_due_digest_for_its_fire_time(
    tmp_path: Path, store: SqlStore
) -> None:
    send = LedgerSend()
    daemon = make_daemon(make_settings(tmp_path), store, send)
    assert daemon.run_once() is True
    # 'late' fired at 20:00 UTC yesterday: 13.5 h ago, past the 6 h grace
    assert send.calls == [("attn", MONDAY_0930)]  # the real time: same date in Berlin
    assert ledger_rows(store) == [("attn", "2026-11-23", "sent", MONDAY_0930.isoformat())]


@pytest.mark.parametrize("grace", ["0s", "30s"])
def test_the_cron_job_sends_when_it_starts_a_little_late_even_with_a_tiny_grace(
    tmp_path: Path, store: SqlStore, grace: str
) -> None:
    # ``misfire_grace: 0s`` (no catch-ups) must still send on time: the cron job starts a
    # few milliseconds after its fire time, or seconds on a busy machine
    settings = make_settings(tmp_path, misfire_grace=grace)
    send = LedgerSend()
    for late in (timedelta(milliseconds=40), timedelta(seconds=45)):
        daemon = make_daemon(settings, store, send, now=BERLIN_FIRE + late)
        assert daemon.send_profile("attn") is True
    assert send.calls == [
        ("attn", BERLIN_FIRE + timedelta(milliseconds=40)),
        ("attn", BERLIN_FIRE + timedelta(seconds=45)),
    ]
    assert [row[:3] for row in ledger_rows(store)] == [("attn", "2026-11-23", "sent")]
    scheduler = daemon.build_scheduler()
    scheduler.start(paused=True)  # job defaults are applied when it starts
    try:  # and APScheduler does not drop a job that starts that late as missed either
        assert scheduler.get_job("send:attn").misfire_grace_time >= 60
    finally:
        scheduler.shutdown(wait=False)
    # a catch-up on start still keeps to the grace: nothing is missed 45 s later with 0s
    assert (
        make_daemon(settings, store, send, now=BERLIN_FIRE + timedelta(hours=1)).missed_sends(
            BERLIN_FIRE + timedelta(hours=1)
        )
        == []
    )


def test_a_catch_up_after_local_midnight_is_for_the_day_it_was_due(
    tmp_path: Path, store: SqlStore
) -> None:
    settings = make_settings(
        tmp_path,
        profiles=[
            {"name": "night", "keywords": ["a"],
             "schedule": {"cron": "30 23 * * *", "timezone": "America/New_York"}},
        ],
    )  # fmt: skip
    # due 23:30 in New York on the 22nd (04:30 UTC on the 23rd); back up at 01:00 local
    now = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    send = LedgerSend()
    assert make_daemon(settings, store, send, now=now).run_once() is True
    fire = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
    assert send.calls == [("night", fire)]  # the digest is for the fire time
    assert send.clock_times == [now]  # the ledger's times and leases: the real time
    assert send.delivered == [("night", "2026-11-22")]


def test_restart_after_a_missed_send_sends_once_and_again_sends_nothing(
    tmp_path: Path, store: SqlStore
) -> None:
    settings = make_settings(tmp_path)
    first = LedgerSend()
    serve_until(make_daemon(settings, store, first), first.called)
    assert first.delivered == [("attn", "2026-11-23")]
    assert first.calls == [("attn", MONDAY_0930)]

    # a restart a few minutes later: the catch-up asks again, the ledger says it is done
    second = LedgerSend()
    later = MONDAY_0930 + timedelta(minutes=5)
    serve_until(make_daemon(settings, store, second, now=later), second.called)
    assert second.calls == [("attn", later)]
    assert second.delivered == []
    assert ledger_rows(store) == [("attn", "2026-11-23", "sent", MONDAY_0930.isoformat())]
    assert load_lock(store, "scheduler") is None  # released on the way out


def test_no_catch_up_past_the_grace(tmp_path: Path, store: SqlStore) -> None:
    settings = make_settings(tmp_path)
    too_late = BERLIN_FIRE + timedelta(hours=6, minutes=1)
    daemon = make_daemon(settings, store, LedgerSend(), now=too_late)
    assert daemon.missed_sends(too_late) == []
    in_time = BERLIN_FIRE + timedelta(hours=5, minutes=59)
    assert daemon.missed_sends(in_time) == [("attn", BERLIN_FIRE)]
    jobs = {job.id for job in daemon.build_scheduler().get_jobs()}
    assert jobs == {"send:attn", "send:late", "drops", "retries"}


def test_the_cron_job_fires_at_the_profile_time(tmp_path: Path, store: SqlStore) -> None:
    daemon = make_daemon(make_settings(tmp_path), store, LedgerSend())
    scheduler = daemon.build_scheduler()
    job = scheduler.get_job("send:attn")
    fire = job.trigger.get_next_fire_time(None, datetime(2026, 3, 27, 12, tzinfo=UTC))
    assert fire.astimezone(UTC) == datetime(2026, 3, 30, 6, 0, tzinfo=UTC)  # Monday, CEST


def test_an_error_in_one_profile_does_not_stop_the_others(
    tmp_path: Path, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path,
        profiles=[
            {"name": "attn", "keywords": ["a"], "schedule": {"cron": "0 8 * * *"}},
            {"name": "other", "keywords": ["b"], "schedule": {"cron": "0 9 * * *"}},
        ],
    )
    send = LedgerSend(crash=["attn"])
    with caplog.at_level(logging.ERROR, logger="digestbot"):
        assert make_daemon(settings, store, send).run_once() is False
    assert [name for name, _ in send.calls] == ["attn", "other"]
    assert send.delivered == [("other", "2026-11-23")]
    crashed = [r for r in caplog.records if getattr(r, "event", None) == "job.crashed"]
    assert len(crashed) == 1
    assert crashed[0].profile == "attn"  # type: ignore[attr-defined]
    assert "boom in attn" in (crashed[0].exc_text or "")


def test_a_failed_delivery_alerts_once_and_is_retried(tmp_path: Path, store: SqlStore) -> None:
    settings = make_settings(tmp_path)
    notes = Recorder()
    send = LedgerSend(fail=["attn"])
    assert make_daemon(settings, store, send, notifier=notes).run_once() is False
    assert make_daemon(settings, store, send, notifier=notes).run_once() is False
    assert len(send.calls) == 2  # the failed digest was tried again
    assert [(a.kind, a.profile, a.destination, a.digest_id) for a in notes.alerts] == [
        ("delivery-failed", "attn", "file:out", "attn:2026-11-23")
    ]
    assert "smtp down" in notes.alerts[0].message


@pytest.mark.parametrize(
    ("on_empty", "how", "alerts"),
    [("notify", "skipped", 1), ("notify", "note-sent", 1), ("skip", "skipped", 0)],
)
def test_an_empty_scheduled_digest_alerts_when_asked(
    tmp_path: Path, store: SqlStore, on_empty: str, how: str, alerts: int
) -> None:
    settings = make_settings(
        tmp_path,
        profiles=[{"name": "attn", "keywords": ["a"], "on_empty": on_empty}],
    )
    notes = Recorder()
    now = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)
    for _ in range(2):
        send = LedgerSend(empty=["attn"]) if how == "skipped" else LedgerSend(empty_note=["attn"])
        make_daemon(settings, store, send, now=now, notifier=notes).run_once()
    assert [a.kind for a in notes.alerts] == ["digest-empty"] * alerts
    if alerts:
        assert "no new papers for profile attn on 2026-11-23" in notes.alerts[0].message


def test_a_source_that_keeps_failing_alerts_once_per_streak(
    tmp_path: Path, store: SqlStore
) -> None:
    settings = make_settings(tmp_path, profiles=[], alerts={"source_failures": 2})
    drops = tmp_path / "drops"
    drops.rmdir()
    notes = Recorder()
    daemon = make_daemon(settings, store, LedgerSend(), notifier=notes)
    results = [daemon.run_once() for _ in range(3)]
    assert results == [False, False, False]
    assert [(a.kind, a.source) for a in notes.alerts] == [("source-failing", "drops")]
    [health] = load_job_health(store)
    assert (health.name, health.consecutive_failures) == ("drops", 3)
    assert "drops folder does not exist" in (health.last_error or "")

    drops.mkdir()
    assert daemon.run_once() is True
    assert load_job_health(store)[0].consecutive_failures == 0
    drops.rmdir()
    daemon.run_once()
    daemon.run_once()
    assert len(notes.alerts) == 2  # a new streak, a new alert


def test_a_dropped_file_is_ingested_by_the_running_daemon(tmp_path: Path, store: SqlStore) -> None:
    from tests.conftest import SEEDS

    settings = make_settings(tmp_path, profiles=[])
    daemon = make_daemon(settings, store, LedgerSend())
    ingested = threading.Event()

    def watch() -> None:
        while not ingested.is_set() and not daemon.stopping.is_set():
            if store.recent_files():
                ingested.set()
            daemon.stopping.wait(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    thread = threading.Thread(target=daemon.serve)
    thread.start()
    (tmp_path / "drops" / "new.txt").write_bytes((SEEDS / "000_ca14cdb193ee54f8.txt").read_bytes())
    try:
        assert ingested.wait(0.2 + 1.0 + 1.0)
    finally:
        daemon.request_stop()
        thread.join(10)
        watcher.join(5)
    assert store.count_papers() == 11


def test_an_edited_config_file_is_reported_once_with_whether_it_loads(
    tmp_path: Path, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("drops: {path: drops}\nprofiles: [{name: a, keywords: [attention]}]\n")
    (tmp_path / "drops").mkdir()
    daemon = make_daemon(load_settings(config, env={}), store, LedgerSend())
    assert daemon.build_scheduler().get_job("config") is not None  # checked as drops are
    caplog.set_level(logging.WARNING, logger="digestbot")
    daemon.check_config()
    assert not caplog.records  # unchanged: nothing said

    config.write_text("drops: {path: drops}\nprofiles: [{name: b, keywords: [vision]}]\n")
    daemon.check_config()
    daemon.check_config()
    changed = [r for r in caplog.records if getattr(r, "event", None) == "config.changed"]
    assert len(changed) == 1
    assert str(config) in changed[0].getMessage()
    assert "restart digestbot run to apply it" in changed[0].getMessage()
    assert [p.name for p in daemon.settings.profiles] == ["a"]  # what it runs with

    caplog.clear()
    config.write_text("drops: {path: drops}\nprofiles: [{name: b, keywrds: [vision]}]\n")
    daemon.check_config()
    message = caplog.records[-1].getMessage()
    assert "a restart would fail" in message and "profiles.0.keywrds: unknown key" in message


def test_a_clock_stepped_back_does_not_stall_the_interval_jobs(
    tmp_path: Path, store: SqlStore, caplog: pytest.LogCaptureFixture
) -> None:
    # APScheduler times interval jobs on the wall clock: after the clock steps back an hour,
    # the drops job (and feeds, personal digests, retries) would wait that hour
    readings = {"wall": 1_800_000_000.0, "mono": 500.0}
    daemon = Daemon(
        make_settings(tmp_path),
        store,
        send=LedgerSend(),
        alerter=Alerter(store, Recorder()),
        wall=lambda: readings["wall"],
        monotonic=lambda: readings["mono"],
        embeddings=False,
    )
    daemon.scheduler = scheduler = daemon.build_scheduler()
    scheduler.start(paused=True)
    try:
        later = datetime.now(UTC) + timedelta(hours=1)
        for job_id in ("drops", "retries"):  # as scheduled before the step
            scheduler.modify_job(job_id, next_run_time=later)
        cron_before = scheduler.get_job("send:attn").next_run_time
        daemon.check_clock()
        readings["mono"] += 1.0  # a second later on the monotonic clock, an hour back on the wall
        readings["wall"] += 1.0 - 3600
        caplog.set_level(logging.WARNING, logger="digestbot")
        daemon.check_clock()
        soon = datetime.now(UTC) + timedelta(seconds=5)
        assert scheduler.get_job("drops").next_run_time < soon
        assert scheduler.get_job("retries").next_run_time < soon
        assert scheduler.get_job("send:attn").next_run_time == cron_before  # wall-clock times
        [warning] = [r for r in caplog.records if getattr(r, "event", "") == "clock.stepped-back"]
        assert "went back by 3600 s" in warning.getMessage()
        # a small slew, or time passing normally, wakes nothing
        scheduler.modify_job("drops", next_run_time=later)
        readings["mono"] += 60.0
        readings["wall"] += 59.0
        daemon.check_clock()
        assert scheduler.get_job("drops").next_run_time > soon
    finally:
        scheduler.shutdown(wait=False)


def test_a_failed_digest_is_retried_later_while_within_the_grace(
    tmp_path: Path, store: SqlStore
) -> None:
    settings = make_settings(tmp_path)
    clock = [MONDAY_0930]
    send = LedgerSend(fail=["attn"])
    alerter = Alerter(store, Recorder())
    daemon = Daemon(
        settings, store, send=send, alerter=alerter, clock=lambda: clock[0], retry_seconds=600
    )
    assert daemon.send_profile("attn") is False
    assert daemon.run_retries() is True  # not yet time
    assert len(send.calls) == 1
    send.fail.clear()  # the outage is over
    clock[0] += timedelta(seconds=600)
    assert daemon.run_retries() is True
    assert send.calls == [("attn", MONDAY_0930), ("attn", clock[0])]
    assert send.delivered == [("attn", "2026-11-23")]

    # past the grace, a failure is left for the next scheduled digest (a catch-up there)
    send.fail.add("attn")
    clock[0] = BERLIN_FIRE + timedelta(hours=5, minutes=55)
    daemon.send_profile("attn", BERLIN_FIRE)
    clock[0] += timedelta(seconds=600)
    daemon.run_retries()
    assert len(send.calls) == 3
