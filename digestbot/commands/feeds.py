"""Commands over feeds: ``fetch`` (poll now) and ``feeds`` (their health)."""

from __future__ import annotations

import sys

import click

from digestbot.cli import AppContext, handle_errors, pass_app, print_json, progress_bar
from digestbot.polling import FeedOutcome, FetchReport, poll_feeds, select_feeds
from digestbot.redact import redact_url, redact_urls
from digestbot.store.feeds import load_feed_states


def _line(outcome: FeedOutcome) -> str:
    if outcome.status == "failed":
        reason = (outcome.error or "").removeprefix(f"{outcome.name}: ")  # named already
        return f"{outcome.name}: FAILED: {reason}"
    if outcome.status == "not-modified":
        return f"{outcome.name}: not modified"
    text = (
        f"{outcome.name}: {outcome.items} items: {outcome.new} new, {outcome.merged} merged, "
        f"{outcome.updated} updated, {outcome.skipped} skipped"
    )
    if outcome.warnings:
        text += f" ({len(outcome.warnings)} warnings)"
    return text


@click.command()
@click.option("--feed", "feed_name", help="Only this feed (by name).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
@pass_app
@handle_errors
def fetch(app: AppContext, feed_name: str | None, as_json: bool) -> None:
    """Poll the configured feeds now. Exit 1 if any feed failed (the others still go in)."""
    feeds = select_feeds(app.settings, feed_name)
    if not feeds:
        if as_json:
            print_json(FetchReport().as_dict())  # the same keys, all zero
        else:
            click.echo("no feeds configured (add a 'feeds:' list to the config)", err=True)
        return
    with progress_bar(len(feeds), label="fetching", enabled=not as_json) as advance:

        def on_feed(outcome: FeedOutcome) -> None:
            advance()
            if not as_json:
                click.echo(_line(outcome), err=outcome.status == "failed")

        report = poll_feeds(app.settings, app.store, now=app.now(), only=feed_name, on_feed=on_feed)
    if as_json:
        print_json(report.as_dict())
    if not report.ok:
        sys.exit(1)


# a feed's health in ``feeds --json`` (``FeedState.as_dict`` but its name and url)
_STATE_KEYS = (
    "last_status",
    "last_attempt",
    "last_success",
    "last_error",
    "last_error_at",
    "consecutive_failures",
    "last_items",
    "items_seen",
)
_STATE_ZEROS: dict[str, object] = {"consecutive_failures": 0, "last_items": 0, "items_seen": 0}


@click.command(name="feeds")
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def feeds_status(app: AppContext, as_json: bool) -> None:
    """Each configured feed's health: last success, last error, items seen."""
    states = {s.name: s for s in load_feed_states(app.store)}
    rows: list[dict[str, object]] = []
    for feed in app.settings.feeds:
        state = states.get(feed.name)
        row: dict[str, object] = {"name": feed.name, "url": redact_url(feed.url), "kind": feed.kind}
        if state is not None:
            row.update({k: v for k, v in state.as_dict().items() if k not in ("name", "url")})
            if state.last_error:  # an error stored by an older version may name the URL
                row["last_error"] = redact_urls(state.last_error)
        else:  # never polled: the same keys as a polled feed's
            row.update({key: _STATE_ZEROS.get(key) for key in _STATE_KEYS})
        rows.append(row)
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no feeds configured (add a 'feeds:' list to the config)", err=True)
    for row in rows:
        failing = ""
        if row.get("last_status") == "failed":  # a feed down for days says so
            failing = f"  failed {row.get('consecutive_failures')} times in a row"
            failing += f"; error: {row['last_error']}"
        click.echo(
            f"{row['name']:<20} {row.get('last_status') or 'never polled':<13} "
            f"last success {row.get('last_success') or '-'}  items seen {row.get('items_seen')}"
            + failing
        )


COMMANDS = [fetch, feeds_status]
