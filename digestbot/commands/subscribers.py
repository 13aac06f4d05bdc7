"""``digestbot subscribers add|remove|list|import|export``: a profile's newsletter readers.

CSV files have the header ``email,cadence,status`` (cadence and status may be left
out or empty: ``daily`` and ``active``). A bad row is an error naming the file and
line, and nothing of that file is written.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import cast

import click

from digestbot.cli import AppContext, handle_errors, pass_app, print_json
from digestbot.errors import AddressError, ConfigError
from digestbot.store.subscribers import (
    CADENCES,
    STATUSES,
    Cadence,
    SubscriberStatus,
    load_subscribers,
    normalize_address,
    remove_subscribers,
    upsert_subscribers,
)

HEADER = ("email", "cadence", "status")


def _profile(app: AppContext, name: str) -> str:
    return app.settings.profile(name).name  # NotFoundError names the known profiles


@click.group()
def subscribers() -> None:
    """Newsletter subscribers of a profile (kept in the database)."""


@subscribers.command("add")
@click.option("--profile", "profile", required=True, help="The profile they subscribe to.")
@click.option("--weekly", is_flag=True, help="The best papers of the week, on email.weekly_day.")
@click.argument("emails", nargs=-1, required=True)
@pass_app
@handle_errors
def add(app: AppContext, profile: str, weekly: bool, emails: tuple[str, ...]) -> None:
    """Subscribe addresses (re-subscribes an address that had left or bounced)."""
    name = _profile(app, profile)
    addresses = [normalize_address(e) for e in emails]  # all valid, or nothing written
    cadence: Cadence = "weekly" if weekly else "daily"
    added, updated = upsert_subscribers(
        app.store, profile=name, rows=[(a, cadence, "active") for a in addresses], now=app.now()
    )
    click.echo(f"{name}: {added} added, {updated} updated ({cadence})")


@subscribers.command("remove")
@click.option("--profile", "profile", required=True)
@click.argument("emails", nargs=-1, required=True)
@pass_app
@handle_errors
def remove(app: AppContext, profile: str, emails: tuple[str, ...]) -> None:
    """Forget addresses (to record an opt-out instead, the reader uses the link)."""
    name = _profile(app, profile)
    addresses = [normalize_address(e) for e in emails]
    removed = remove_subscribers(app.store, profile=name, addresses=addresses)
    click.echo(f"{name}: {removed} removed")


@subscribers.command("list")
@click.option("--profile", "profile", required=True)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of subscribers.")
@pass_app
@handle_errors
def list_command(app: AppContext, profile: str, as_json: bool) -> None:
    """Every subscriber of the profile with cadence and status."""
    rows = load_subscribers(app.store, profile=_profile(app, profile))
    if as_json:
        print_json([s.as_dict() for s in rows])
        return
    for s in rows:
        error = f"  ({s.error})" if s.error else ""
        click.echo(f"{s.address}  {s.cadence}  {s.status}{error}")
    if not rows:
        click.echo("no subscribers", err=True)


def parse_csv(text: str, *, source: str) -> list[tuple[str, Cadence, SubscriberStatus]]:
    """Rows of an ``email,cadence,status`` file; ``ConfigError`` names the file and line."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        raise ConfigError("the first line must be the header email,cadence,status", path=source)
    rows: list[tuple[str, Cadence, SubscriberStatus]] = []
    for row in reader:
        line = reader.line_num
        # a spreadsheet's export writes ``Email,Cadence,Status`` and ``Weekly``, ``Active``
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k}
        cadence = (values.get("cadence") or "daily").lower()
        status = (values.get("status") or "active").lower()
        where = f"{source}:{line}"
        if cadence not in CADENCES:
            raise ConfigError(f"cadence {cadence!r} is not daily or weekly", path=where)
        if status not in STATUSES:
            raise ConfigError(f"status {status!r} is not one of {', '.join(STATUSES)}", path=where)
        try:
            address = normalize_address(values.get("email", ""))
        except AddressError as exc:
            raise ConfigError(str(exc), path=where, key="email") from exc
        rows.append((address, cast(Cadence, cadence), cast(SubscriberStatus, status)))
    return rows


@subscribers.command("import")
@click.option("--profile", "profile", required=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_app
@handle_errors
def import_command(app: AppContext, profile: str, file: Path) -> None:
    """Add or update subscribers from a CSV file (header email,cadence,status)."""
    name = _profile(app, profile)
    rows = parse_csv(file.read_text(encoding="utf-8-sig"), source=str(file))
    # a reader who opted out (the one-click link) is not mailed again because a list names
    # it: only `subscribers add` re-subscribes (an admin's decision)
    gone = {
        s.address for s in load_subscribers(app.store, profile=name, statuses=("unsubscribed",))
    }
    kept = sorted({address for address, _, status in rows if status == "active"} & gone)
    added, updated = upsert_subscribers(
        app.store, profile=name, rows=rows, now=app.now(), keep_unsubscribed=True
    )
    note = ""
    if kept:
        shown = ", ".join(kept[:5]) + (f" and {len(kept) - 5} more" if len(kept) > 5 else "")
        it = "it" if len(kept) == 1 else "them"
        note = (
            f"; {len(kept)} kept unsubscribed ({shown}: {it} opted out; "
            f"`subscribers add` re-subscribes {it})"
        )
    click.echo(f"{name}: {added} added, {updated} updated from {file}{note}")


@subscribers.command("export")
@click.option("--profile", "profile", required=True)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
@handle_errors
def export_command(app: AppContext, profile: str, file: Path | None) -> None:
    """Write the subscribers as CSV (email,cadence,status) to FILE or stdout."""
    rows = load_subscribers(app.store, profile=_profile(app, profile))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows((s.address, s.cadence, s.status) for s in rows)
    if file is None:
        sys.stdout.write(out.getvalue())
    else:
        file.write_text(out.getvalue(), encoding="utf-8")
        click.echo(f"{len(rows)} subscribers written to {file}", err=True)


COMMANDS = [subscribers]
