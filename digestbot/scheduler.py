"""The daemon: APScheduler 3.x wiring for digests, the drops folder and feeds.

``Daemon`` owns no policy of its own about what was sent: the delivery service's
ledger decides (``send`` is idempotent per profile, destination and digest
date), so a restart, a misfire or a catch-up never sends twice. The daemon only
decides *when* to ask: at each profile's cron time, once on start for a fire
time missed within ``misfire_grace``, and again after a failure while still
within the grace.

Every service is injected (``send``, ``poll``, ``ingest``, the notifier, the
clock), so tests drive it with a fixed clock and fakes, and the command line
wires the real ones.

Jobs are wrapped once (``_run_job``): a job that raises is logged with its
profile or source and never stops the others. Deliveries run one at a time.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from digestbot.alerts import Alerter
from digestbot.config import Profile, Settings, parse_duration
from digestbot.errors import DigestError
from digestbot.ingest import IngestReport, ingest_paths
from digestbot.lock import HEARTBEAT_SECONDS, holding_scheduler_lock
from digestbot.pipeline import index_papers
from digestbot.ranking.background import SOURCE as EMBEDDINGS
from digestbot.ranking.background import EmbeddingWorker
from digestbot.ranking.semantic import query_texts
from digestbot.services import (
    Clock,
    PollFn,
    SendFn,
    SendOutcomeLike,
    is_held_by_another_run,
    is_new_rejection,
)
from digestbot.store import SqlStore
from digestbot.store.daemon import record_job_result
from digestbot.timing import build_trigger, last_fire_time, send_time
from digestbot.watcher import DropWatcher, IngestFn

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CLOCK_STEP_SECONDS = 30.0  # a wall clock step back larger than this wakes the interval jobs
PERSONAL_SECONDS = 60.0  # how often personal digests (chosen times, in minutes) are asked for
# how late a cron job may start and still send (a busy pool or machine): a job that
# fired is on time, whatever ``misfire_grace`` says about catching up (``0s`` included)
ON_TIME_SECONDS = 60.0
ONCE_EMBED_LIMIT = 2000  # papers ``run --once`` embeds after its sends (about 2 min on 2 cores)


def system_clock() -> datetime:
    return datetime.now(UTC)


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def config_stamp(source: str) -> tuple[int, int] | None:
    """The config file's modification time and size (``None``: embedded defaults, or gone)."""
    try:
        stat = os.stat(source)
    except (OSError, ValueError):
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _count(papers: Any) -> Any:
    return len(papers) if isinstance(papers, list | tuple) else papers


class Daemon:
    """Drops, feeds and digests on a schedule; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        send: SendFn | None,
        send_personal: SendFn | None = None,
        poll: PollFn | None = None,
        ingest: IngestFn = ingest_paths,
        alerter: Alerter,
        clock: Clock = system_clock,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        holder: str | None = None,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        retry_seconds: float = 600.0,
        embeddings: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.send = send
        self.send_personal = send_personal
        self.poll = poll
        self.ingest = ingest
        self.alerter = alerter
        self.clock = clock
        self.holder = holder or make_holder_id()
        self.heartbeat_seconds = heartbeat_seconds
        self.retry_seconds = retry_seconds
        self.grace = timedelta(seconds=parse_duration(settings.misfire_grace))
        self.on_time = max(self.grace, timedelta(seconds=ON_TIME_SECONDS))
        self._config_seen = config_stamp(settings.source)
        self.watcher = DropWatcher(
            settings.drops.path, settle_seconds=settings.drops.settle_seconds, wall=wall
        )
        self.wall = wall
        self.monotonic = monotonic
        self._clock_mark: tuple[float, float] | None = None  # (wall, monotonic) last seen
        self.stopping = threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._send_lock = threading.Lock()
        self._active = 0
        self._idle = threading.Condition()
        self._failures: dict[str, int] = {}
        self._retries: dict[str, tuple[datetime, datetime]] = {}  # profile -> (fire, retry at)
        # missing embeddings are computed on a thread of their own (no model: nothing to do)
        self.embed_worker: EmbeddingWorker | None = None
        if embeddings:
            worker = EmbeddingWorker(
                store,
                settings.ranking,
                holder=self.holder,
                clock=clock,
                on_result=lambda ok, error: self._source_result(EMBEDDINGS, ok=ok, error=error),
                queries=[text for profile in settings.profiles for text in query_texts(profile)],
            )
            self.embed_worker = worker if worker.is_enabled else None

    # -- jobs ---------------------------------------------------------------------------------
    def _run_job(self, name: str, func: Callable[..., bool], *args: Any, **context: Any) -> bool:
        """The one place a job's unexpected error is caught: logged, and the others go on."""
        if self.stopping.is_set():
            return True
        with self._idle:
            self._active += 1
        try:
            return func(*args)
        except Exception:
            log.exception("job %s failed", name, extra={"event": "job.crashed", **context})
            return False
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def send_profile(self, name: str, fire: datetime | None = None) -> bool:
        """Send a profile's due digest (the most recent fire time within the grace)."""
        profile = self.settings.profile(name)
        now = self.clock()
        # its cron job (no ``fire``) may start a little late; a catch-up keeps to the grace
        grace = self.on_time if fire is None else self.grace
        if fire is None:
            fire = last_fire_time(profile.schedule, now=now, grace=grace)
        if fire is None or now - fire > grace:
            log.info("profile %s: no digest due", name, extra={"profile": name})
            return True
        if self.send is None:
            log.error(
                "profile %s: delivery is not available in this installation; nothing sent",
                name,
                extra={"event": "delivery.unavailable", "profile": name},
            )
            return False
        with self._send_lock:
            at = send_time(profile.schedule, fire=fire, now=now)
            report = self.send(self.settings, self.store, now=now, as_of=at, profiles=[name])
        for outcome in report.outcomes:
            self._after_delivery(profile, outcome, fire=fire, now=now)
        # a digest another run holds (its lease: a run stopped mid-send, then restarted at
        # once) is asked for again later too, or it would stay pending until the next day
        if not report.ok or any(is_held_by_another_run(o) for o in report.outcomes):
            self._schedule_retry(name, fire)
        return report.ok and not _rejected(report.outcomes)  # rejected: reported, not retried

    def send_personal_digests(self) -> bool:
        """Send the personal digests (``/papers follow``) whose local time has come.

        Asked every minute: the people and their times are read from the database on
        each call, so ``/papers time`` takes effect without a restart.
        """
        if self.send_personal is None:
            return True
        now = self.clock()
        with self._send_lock:
            report = self.send_personal(self.settings, self.store, now=now)
        for outcome in report.outcomes:
            self._after_delivery(None, outcome, fire=now, now=now)
        return report.ok and not _rejected(report.outcomes)

    def _after_delivery(
        self, profile: Profile | None, outcome: SendOutcomeLike, *, fire: datetime, now: datetime
    ) -> None:
        digest = str(outcome.digest_id) if outcome.digest_id else None
        extra = {
            "event": f"delivery.{outcome.status}",
            "profile": outcome.profile,
            "destination": outcome.destination,
            "digest_id": digest,
        }
        if outcome.status == "failed":
            log.error(
                "delivery failed profile=%s destination=%s digest=%s: %s",
                outcome.profile,
                outcome.destination,
                digest,
                outcome.error,
                extra=extra,
            )
            self.alerter.delivery_failed(
                profile=outcome.profile,
                destination=outcome.destination,
                digest_id=digest,
                error=outcome.error,
                now=now,
            )
            return
        if outcome.status == "rejected":  # settled: alerted once (by digest), not retried
            self.alerter.digest_rejected(
                profile=outcome.profile,
                destination=outcome.destination,
                digest_id=digest,
                error=outcome.error,
                now=now,
            )
            return
        log.info(
            "delivery %s profile=%s destination=%s digest=%s papers=%s",
            outcome.status,
            outcome.profile,
            outcome.destination,
            digest,
            _count(outcome.papers),
            extra=extra,
        )
        # no papers: skipped ("nothing-new"), or an empty note posted (the service's
        # reading of on_empty: notify); either way the alert channel is told when asked
        is_empty = outcome.status == "nothing-new" or (
            outcome.status == "sent" and _count(outcome.papers) == 0
        )
        if is_empty and profile is not None and profile.on_empty == "notify":
            local_date = fire.astimezone(build_trigger(profile.schedule).timezone).date()
            self.alerter.digest_empty(
                profile=outcome.profile,
                destination=outcome.destination,
                digest_date=local_date.isoformat(),
                now=now,
            )

    def _schedule_retry(self, name: str, fire: datetime) -> None:
        """Try a failed digest again later, while its fire time is within the grace."""
        retry_at = self.clock() + timedelta(seconds=self.retry_seconds)
        if retry_at - fire > self.grace:
            return
        log.info("profile %s: retrying at %s", name, retry_at.isoformat(), extra={"profile": name})
        with self._idle:
            self._retries[name] = (fire, retry_at)

    def run_retries(self) -> bool:
        """The retry job: send the failed digests whose retry time has come."""
        now = self.clock()
        with self._idle:
            due = [(n, f) for n, (f, at) in self._retries.items() if at <= now]
            for name, _ in due:
                del self._retries[name]
        results = [
            self._run_job(f"retry:{name}", self.send_profile, name, fire, profile=name)
            for name, fire in due
        ]
        return all(results)

    def missed_sends(self, now: datetime) -> list[tuple[str, datetime]]:
        """Profiles whose most recent fire time is within the grace: asked again on start."""
        missed = []
        for profile in self.settings.profiles:
            fire = last_fire_time(profile.schedule, now=now, grace=self.grace)
            if fire is not None:
                missed.append((profile.name, fire))
        return missed

    def catch_up(self, missed: Sequence[tuple[str, datetime]]) -> None:
        """Send what was due while the process was down (the ledger drops what was sent)."""
        for name, fire in missed:
            log.info(
                "profile %s: catching up the digest due at %s",
                name,
                fire.isoformat(),
                extra={"event": "schedule.catch-up", "profile": name},
            )
            self._run_job(f"catch-up:{name}", self.send_profile, name, fire, profile=name)

    def watch_drops(self) -> bool:
        """Ingest the drop files that are complete and new."""
        try:
            report: IngestReport = self.watcher.ingest_ready(
                self.store, now=self.clock(), ingest=self.ingest
            )
            if report.papers_new or report.papers_merged:
                index_papers(self.store, self.settings.ranking)  # the next digest pays nothing
                if self.embed_worker is not None:
                    self.embed_worker.wake()  # embedded in the background, newest first
        except DigestError as exc:
            self._source_result("drops", ok=False, error=str(exc))
            log.error("drops: %s", exc, extra={"event": "source.failed", "source": "drops"})
            return False
        self._source_result("drops", ok=True)
        return report.ok

    def check_config(self) -> bool:
        """Warn (once per change) that the config file changed: the daemon keeps the settings
        it started with, so an edit applies only after a restart, and says so, and whether
        the edited file would load."""
        stamp = config_stamp(self.settings.source)
        if self._config_seen is None or stamp == self._config_seen:
            return True
        self._config_seen = stamp
        from digestbot.config import load_settings

        try:
            load_settings(self.settings.source)
            verdict = "restart digestbot run to apply it"
        except DigestError as exc:
            verdict = f"it does not load, so a restart would fail: {exc}"
        log.warning(
            "the config file %s changed since digestbot run started; the daemon keeps the "
            "settings it started with: %s",
            self.settings.source,
            verdict,
            extra={"event": "config.changed"},
        )
        return True

    def poll_feed(self, name: str) -> bool:
        """Poll one feed; its own health (ETag, last error) is the feeds service's business."""
        source = f"feed:{name}"
        if self.poll is None:
            log.error("feeds are not available in this installation", extra={"source": source})
            return False
        try:
            report = self.poll(self.settings, self.store, now=self.clock(), only=name)
            ok = report.ok
            errors = [f.error for f in report.feeds if f.error]
            error = None if ok else "; ".join(errors) or "the poll failed"
        except DigestError as exc:
            ok, error = False, str(exc)
        if not ok:
            log.error("%s: %s", source, error, extra={"event": "source.failed", "source": source})
        elif self.embed_worker is not None:
            self.embed_worker.wake()
        self._source_result(source, ok=ok, error=error)
        return ok

    def _source_result(self, source: str, *, ok: bool, error: str | None = None) -> None:
        if ok and self._failures.get(source) == 0:
            return  # nothing changed: no write on an idle poll
        now = self.clock()
        failures = record_job_result(self.store, source, ok=ok, now=now, error=error)
        self._failures[source] = failures
        self.alerter.source_result(source, failures=failures, error=error, now=now)

    # -- one pass, for cron ---------------------------------------------------------------------
    def run_once(self) -> bool:
        """Ingest what is new, poll every feed, send every due digest. ``True`` if all went well."""
        results = [self._run_job("drops", self.watch_drops, source="drops")]
        for feed in self.settings.feeds:
            results.append(
                self._run_job(f"feed:{feed.name}", self.poll_feed, feed.name, source=feed.name)
            )
        for profile in self.settings.profiles:
            results.append(
                self._run_job(
                    f"send:{profile.name}", self.send_profile, profile.name, profile=profile.name
                )
            )
        results.append(self._run_job("personal", self.send_personal_digests))
        if self.embed_worker is not None:  # after the sends, so no digest waits for it
            results.append(self._run_job(EMBEDDINGS, self.embed_once, source=EMBEDDINGS))
        return all(results)

    def embed_once(self) -> bool:
        """``run --once``: embed up to ``ONCE_EMBED_LIMIT`` missing papers, newest first."""
        assert self.embed_worker is not None
        try:
            self.embed_worker.run_pass(limit=ONCE_EMBED_LIMIT)
        except DigestError as exc:
            log.error("embeddings: %s", exc, extra={"event": "source.failed", "source": EMBEDDINGS})
            self._source_result(EMBEDDINGS, ok=False, error=str(exc))
            return False
        return True

    # -- the long-running process -------------------------------------------------------------
    def holding_lock(self) -> AbstractContextManager[None]:
        """Hold the database's scheduler lock while the block runs (see ``digestbot.lock``):
        timed by the database's clock, not ``self.clock`` (machines' clocks disagree)."""
        return holding_scheduler_lock(
            self.store,
            holder=self.holder,
            heartbeat_seconds=self.heartbeat_seconds,
            on_lost=self.stopping.set,
        )

    def build_scheduler(self) -> BackgroundScheduler:
        """Every job: one cron per profile, the drops watcher, one interval per feed."""
        scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(self.on_time.total_seconds()),
            },
        )
        for profile in self.settings.profiles:
            scheduler.add_job(
                self._run_job,
                build_trigger(profile.schedule),
                args=[f"send:{profile.name}", self.send_profile, profile.name],
                kwargs={"profile": profile.name},
                id=f"send:{profile.name}",
            )
        if self.settings.profiles:
            scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=min(60.0, self.retry_seconds), timezone=UTC),
                args=["retries", self.run_retries],
                id="retries",
            )
        if self.send_personal is not None:
            scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=PERSONAL_SECONDS, timezone=UTC),
                args=["personal", self.send_personal_digests],
                id="personal",
            )
        scheduler.add_job(
            self._run_job,
            IntervalTrigger(seconds=self.settings.drops.poll_seconds, timezone=UTC),
            args=["drops", self.watch_drops],
            kwargs={"source": "drops"},
            id="drops",
            next_run_time=datetime.now(UTC),
        )
        if self._config_seen is not None:  # a config file, not the embedded defaults
            scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=self.settings.drops.poll_seconds, timezone=UTC),
                args=["config", self.check_config],
                id="config",
            )
        for feed in self.settings.feeds:
            scheduler.add_job(
                self._run_job,
                IntervalTrigger(seconds=parse_duration(feed.every), timezone=UTC),
                args=[f"feed:{feed.name}", self.poll_feed, feed.name],
                kwargs={"source": f"feed:{feed.name}"},
                id=f"feed:{feed.name}",
                next_run_time=datetime.now(UTC),
            )
        return scheduler

    def serve(self, *, drain_seconds: float = 8.0) -> bool:
        """Run until ``stopping`` is set; then finish the current work. ``False`` if some job
        was still running after ``drain_seconds`` (its delivery stays pending in the ledger)."""
        with self.holding_lock():
            missed = self.missed_sends(self.clock())
            self.scheduler = self.build_scheduler()
            self.scheduler.start()
            # one-off catch-ups run on a thread of their own, not as one-off APScheduler jobs:
            # APScheduler 3 can raise JobLookupError when shut down while removing a run-once job
            threading.Thread(
                target=self.catch_up, args=(missed,), name="digestbot-catch-up", daemon=True
            ).start()
            if self.embed_worker is not None:
                self.embed_worker.start()
            log.info(
                "running: %d profile(s), %d feed(s), drops every %ss from %s",
                len(self.settings.profiles),
                len(self.settings.feeds),
                self.settings.drops.poll_seconds,
                self.settings.drops.path,
                extra={"event": "daemon.started"},
            )
            while not self.stopping.wait(1.0):
                self.check_clock()
            log.info("stopping: no new work; finishing the current job", extra={"event": "stop"})
            self.scheduler.shutdown(wait=False)
            # the worker ends after its batch; one still loading the model is left behind
            deadline = time.monotonic() + drain_seconds
            stopped = self.embed_worker is None or self.embed_worker.stop(timeout=drain_seconds)
            return self.wait_idle(max(deadline - time.monotonic(), 0.0)) and stopped

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._active:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning(
                        "%d job(s) still running after %ss: leaving them pending",
                        self._active,
                        timeout,
                        extra={"event": "stop.timeout"},
                    )
                    return False
                self._idle.wait(left)
        return True

    def check_clock(self) -> None:
        """Wake the interval jobs when the wall clock stepped back (an NTP correction, a VM
        restored): APScheduler 3 times them on the wall clock, so after a step back of an
        hour the drops, feeds, personal digests and retries would all wait that hour."""
        wall, mono = self.wall(), self.monotonic()
        mark, self._clock_mark = self._clock_mark, (wall, mono)
        if mark is None or self.scheduler is None:
            return
        step = (wall - mark[0]) - (mono - mark[1])
        if step > -CLOCK_STEP_SECONDS:
            return
        log.warning(
            "the clock went back by %.0f s: running the interval jobs now",
            -step,
            extra={"event": "clock.stepped-back"},
        )
        now = datetime.now(UTC)
        for job in self.scheduler.get_jobs():
            if isinstance(job.trigger, IntervalTrigger):
                job.modify(next_run_time=now)

    def request_stop(self, *_args: object) -> None:
        """Signal handler: stop taking new work."""
        self.stopping.set()


def serve_until_signalled(
    daemon: Daemon, *, drain_seconds: float = 7.0, on_exit: Sequence[Callable[[], None]] = ()
) -> None:
    """Serve until SIGTERM/SIGINT; then finish the current job and return, all within 10 s.

    A job still running after ``drain_seconds`` is abandoned (its digest stays
    ``pending`` in the ledger for the next start) and the process exits at once.
    """
    signal.signal(signal.SIGTERM, daemon.request_stop)
    signal.signal(signal.SIGINT, daemon.request_stop)
    signal.signal(signal.SIGHUP, _hangup)
    if daemon.serve(drain_seconds=drain_seconds):
        return
    for cleanup in reversed(on_exit):
        cleanup()
    logging.shutdown()
    os._exit(0)  # worker threads would otherwise hold the interpreter open


def _hangup(*_args: object) -> None:
    """SIGHUP (a log rotation, a closed terminal, a reload attempt) would kill the daemon
    holding its lock; it goes on, and says that the config is read only at start."""
    log.warning(
        "SIGHUP received: still running; the config is not reloaded (restart digestbot run "
        "to apply an edit); logs go to stderr, so nothing is reopened",
        extra={"event": "signal.hangup"},
    )


def run_once_until_signalled(
    daemon: Daemon, *, drain_seconds: float = 7.0, on_exit: Sequence[Callable[[], None]] = ()
) -> bool:
    """``run --once`` under SIGTERM/SIGINT as ``run`` is: after the signal no new job starts,
    the current one has ``drain_seconds`` to finish, and the scheduler lock is let go either
    way (killed by the default handler, it stayed held for 90 s and refused the daemon).
    ``True`` when the whole pass ran and went well."""
    previous = {sig: signal.signal(sig, daemon.request_stop) for sig in STOP_SIGNALS}
    try:
        return _run_once(daemon, drain_seconds=drain_seconds, on_exit=on_exit)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_once(
    daemon: Daemon, *, drain_seconds: float, on_exit: Sequence[Callable[[], None]]
) -> bool:
    results: list[bool] = []
    with daemon.holding_lock():
        worker = threading.Thread(
            target=lambda: results.append(daemon.run_once()), name="digestbot-once", daemon=True
        )
        worker.start()
        while worker.is_alive() and not daemon.stopping.is_set():
            worker.join(0.1)
        if worker.is_alive():
            log.info("stopping: no new work; finishing the current job", extra={"event": "stop"})
            worker.join(drain_seconds)
        abandoned = worker.is_alive()
        if abandoned:
            log.warning(
                "a job still running after %ss: leaving it (a delivery stays pending)",
                drain_seconds,
                extra={"event": "stop.timeout"},
            )
    if abandoned:
        for cleanup in reversed(on_exit):
            cleanup()
        logging.shutdown()
        os._exit(1)  # the job's thread would otherwise hold the interpreter open
    return bool(results and results[0]) and not daemon.stopping.is_set()


def _rejected(outcomes: Sequence[SendOutcomeLike]) -> bool:
    """Whether Slack or the mail server rejected a digest in this run (settled, not retried,
    but not "all went well")."""
    return any(is_new_rejection(o) for o in outcomes)  # not one rejected by an earlier run
