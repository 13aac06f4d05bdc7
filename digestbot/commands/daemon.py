"""Commands of the daemon: ``run`` (long-running or ``--once``) and ``status``."""

from __future__ import annotations

import importlib
import logging
import sys
from datetime import datetime, timedelta
from typing import Any

import click

from digestbot.alert_channels import build_notifier
from digestbot.alerts import Alerter
from digestbot.cli import AppContext, handle_errors, pass_app, print_json
from digestbot.scheduler import Daemon, run_once_until_signalled, serve_until_signalled
from digestbot.services import PollFn, SendFn
from digestbot.status import build_status
from digestbot.timing import check_schedules

log = logging.getLogger(__name__)


def load_service(module: str, name: str) -> Any:
    """A service function of an optional part (delivery, feeds), when it is installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None


def load_send() -> SendFn | None:
    """The delivery service."""
    send: SendFn | None = load_service("digestbot.delivery.service", "send_due")
    return send


def load_send_personal() -> SendFn | None:
    """The personal (direct-message) digests."""
    send: SendFn | None = load_service("digestbot.delivery.personal", "send_personal_due")
    return send


def load_poll() -> PollFn | None:
    """The feeds service."""
    poll: PollFn | None = load_service("digestbot.polling", "poll_feeds")
    return poll


def build_daemon(app: AppContext, **overrides: Any) -> Daemon:
    settings = app.settings
    check_schedules(settings)  # a bad cron is a config error at start, naming its profile
    alerter = Alerter(
        app.store, build_notifier(settings), source_failures=settings.alerts.source_failures
    )
    services: dict[str, Any] = {
        "send": load_send(),
        "send_personal": load_send_personal(),
        "poll": load_poll(),
        **overrides,
    }
    return Daemon(settings, app.store, alerter=alerter, clock=app.now, **services)


def _event_logs(app: AppContext) -> None:
    """A daemon's log is its events: INFO for digestbot, WARNING for APScheduler's chatter."""
    if not app.debug:
        logging.getLogger("digestbot").setLevel(logging.INFO)
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


@click.command("run")
@click.option("--once", is_flag=True, help="Ingest, poll feeds, send what is due, then exit.")
@pass_app
@handle_errors
def run_command(app: AppContext, once: bool) -> None:
    """Run the scheduler: digests on time, drops and feeds as they come. Stop with Ctrl-C."""
    _event_logs(app)
    daemon = build_daemon(app)
    if once:
        ok = run_once_until_signalled(daemon, on_exit=app.cleanups)
        sys.exit(0 if ok else 1)
    serve_until_signalled(daemon, on_exit=app.cleanups)


ORPHANS_SHOWN = 5


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
@handle_errors
def status(app: AppContext, as_json: bool) -> None:
    """Next runs, last digests, pending and failed ones, recent files, sources, the scheduler."""
    check_schedules(app.settings)
    report = build_status(app.settings, app.store, now=app.now())
    if as_json:
        print_json(report)
        return
    lock = report["scheduler"]
    if lock is None:
        click.echo("scheduler: not running")
    else:
        stale = " (STALE: no heartbeat)" if lock["stale"] else ""
        click.echo(f"scheduler: {lock['holder']} since {lock['acquired_at']}{stale}")
    click.echo("profiles:")
    for p in report["profiles"]:
        click.echo(f"  {p['name']:<24} next {_when(p)}  ({p['cron']}, {p['timezone']})")
    if report.get("personal"):
        click.echo("personal digests (direct messages):")
        for p in report["personal"]:
            click.echo(f"  {p['user']:<24} next {_when(p)}  ({p['timezone']})")
    click.echo("last digests:")
    for d in report["deliveries"] or [{"profile": "-", "destination": "(none yet)"}]:
        reason = (d.get("error") or "").removeprefix(f"{d['destination']}: ")  # named already
        error = f"  error: {reason}" if reason else ""
        error += f"  ({d['note']})" if d.get("note") else ""
        click.echo(
            f"  {d['profile']:<24} {d['destination']:<32} "
            f"{d.get('digest_date') or ''} {d.get('status') or ''}{error}"
        )
    if report["open_digests"]:
        click.echo("pending or failed:")
        for d in report["open_digests"]:
            click.echo(f"  {d['digest_id']} {d['profile']} -> {d['destination']}: {d['status']}")
    if report.get("rejected_digests"):
        click.echo(
            "rejected for their content by Slack or the mail server (not retried; the next "
            "digest goes out as usual):"
        )
        for d in report["rejected_digests"]:
            reason = (d["error"] or "").removeprefix(f"{d['destination']}: ")
            click.echo(f"  {d['digest_date']} {d['profile']} -> {d['destination']}: {reason}")
    if report.get("orphaned_digests"):
        click.echo(
            f"orphaned: {len(report['orphaned_digests'])} unsent digests whose profile or "
            "destination is gone (removed from the config, unsubscribed or bounced; never "
            "retried; see `digestbot history`):"
        )
        for d in report["orphaned_digests"][:ORPHANS_SHOWN]:
            click.echo(f"  {d['digest_id']} {d['profile']} -> {d['destination']}: {d['status']}")
        if len(report["orphaned_digests"]) > ORPHANS_SHOWN:
            click.echo(f"  … and {len(report['orphaned_digests']) - ORPHANS_SHOWN} more")
    click.echo("recent files:")
    for f in report["files"]:
        error = f"  error: {f['error']}" if f["error"] else ""
        click.echo(f"  {f['ingested_at']} {f['status']:<7} {f['path']}{error}")
    unhealthy = [s for s in report["sources"] if s["consecutive_failures"]]
    named = {s["name"] for s in unhealthy}  # the daemon's record of a feed comes first
    for feed in report["feeds"]:
        if feed.get("consecutive_failures") and f"feed:{feed['name']}" not in named:
            unhealthy.append({**feed, "name": f"feed:{feed['name']}"})
    failed_drops = report.get("failed_drops") or []
    click.echo("sources: " + ("all healthy" if not unhealthy and not failed_drops else ""))
    for s in unhealthy:
        click.echo(f"  {s['name']}: {s['consecutive_failures']} failures, last: {s['last_error']}")
    for f in failed_drops:
        click.echo(f"  drop {f['path']}: failed {f['failed_at']}: {f['error']}")
    embeddings = report.get("embeddings")
    if embeddings:
        worker = embeddings["worker"] or {}
        line = (
            f"embeddings: {embeddings['papers_embedded']} papers embedded, "
            f"{embeddings['papers_missing']} missing ({embeddings['model']})"
        )
        if embeddings.get("titles_embedded") is not None:
            line += (
                f"; titles {embeddings['titles_embedded']} embedded, "
                f"{embeddings['titles_missing']} missing"
            )
        if worker:
            line += f"; worker {worker['state']}, {worker['embedded']} embedded since start"
            if worker.get("eta_seconds"):
                line += f", about {worker['eta_seconds'] / 60:.0f} min to go"
        click.echo(line)
    if report["bounced_subscribers"]:
        click.echo("bounced subscribers (not sent to; re-add to retry):")
        for b in report["bounced_subscribers"]:
            click.echo(f"  {b['profile']:<24} {b['email']}  since {b['since']}: {b['error']}")


COMMANDS = [run_command, status]


def _when(entry: dict[str, Any]) -> str:
    """A status entry's next run in its local time, and in UTC where that differs."""
    local, in_utc = entry["next_run_local"], entry["next_run"]
    if local is None or in_utc is None:
        return "never"
    moment = datetime.fromisoformat(in_utc)
    if datetime.fromisoformat(local).utcoffset() == timedelta(0):
        return str(local)
    return f"{local} = {moment:%Y-%m-%d %H:%M} UTC"
