"""Commands that deliver: ``send`` (due digests, through the ledger) and ``history``."""

from __future__ import annotations

import sys

import click

from digestbot.cli import AppContext, handle_errors, pass_app, print_json, progress_bar
from digestbot.delivery.outcomes import form_note
from digestbot.delivery.service import DeliveryOutcome, send_due
from digestbot.delivery.targets import collect_targets
from digestbot.services import is_held_by_another_run, is_new_rejection
from digestbot.store.ledger import LEFT_OUT, DeliveryRecord, load_history


def _line(outcome: DeliveryOutcome) -> str:
    where = f"{outcome.profile} → {outcome.destination}"
    # the error names its destination for logs and --json; the line named it already
    reason = (outcome.error or "").removeprefix(f"{outcome.destination}: ")
    if outcome.status == "sent":
        how = f" ({outcome.detail})" if outcome.detail else ""
        return f"sent          {where}: {outcome.papers} papers{how}"
    if outcome.status == "rejected":
        return f"REJECTED      {where}: {reason} (not retried; the next digest goes out)"
    if is_held_by_another_run(outcome):  # not sent, not by this run: another run's lease holds it
        return f"held          {where}: {outcome.detail}"
    if outcome.status == "already-sent":
        why = f" ({outcome.detail})" if outcome.detail else " today"
        return f"already sent  {where}{why}"
    if outcome.status == "nothing-new":
        return f"nothing new   {where}"
    if outcome.status == "dry-run":
        return f"dry run       {where}: {outcome.papers} papers"
    return f"FAILED        {where}: {reason}"


@click.command()
@click.option("--profile", "profiles", multiple=True, help="Only this profile (repeatable).")
@click.option(
    "--dry-run", is_flag=True, help="Print what each destination would get; send nothing."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable outcomes.")
@pass_app
@handle_errors
def send(app: AppContext, profiles: tuple[str, ...], dry_run: bool, as_json: bool) -> None:
    """Build and deliver the digests that are due. Exit 1 if any delivery failed or
    was rejected (by Slack or the mail server)."""
    now = app.now()
    chosen = [app.settings.profile(n) for n in profiles] if profiles else app.settings.profiles
    total = sum(len(collect_targets(app.settings, app.store, p, now=now)) for p in chosen)
    # a bar on a terminal while a thousand recipients are served (stderr; not with --json)
    with progress_bar(total, label="sending", enabled=not as_json and total > 1) as advance:
        report = send_due(
            app.settings,
            app.store,
            now=now,
            profiles=profiles or None,
            dry_run=dry_run,
            on_outcome=lambda _outcome: advance(),
        )
    if as_json:
        print_json(
            [
                {**o.as_dict(), **({"preview": o.preview} if dry_run else {})}
                for o in report.outcomes
            ]
        )
    else:
        for outcome in report.outcomes:
            if outcome.status == "dry-run":
                click.echo(f"===== {outcome.profile} → {outcome.destination} =====")
                click.echo(outcome.preview.rstrip("\n"))
            stream_err = outcome.status in ("failed", "rejected")
            click.echo(_line(outcome), err=stream_err)
        if not report.outcomes:
            click.echo("no destinations configured", err=True)
        elif not dry_run and report.count("sent") == 0 and report.ok:
            held = sum(1 for o in report.outcomes if is_held_by_another_run(o))
            if held:
                digests = "1 digest is" if held == 1 else f"{held} digests are"
                it = "it" if held == 1 else "them"
                click.echo(
                    f"nothing sent: {digests} held by another run (one that stopped mid-send "
                    f"holds {it} until its 15-minute lease ends; the first send after that "
                    f"delivers {it})"
                )
            elif report.count("already-sent"):
                click.echo("nothing to send: today's digests were already sent")
            else:
                click.echo("nothing to send: no new papers for any destination")
    # a digest rejected by an earlier run today is reported, not a new failure (exit 0)
    if not report.ok or (any(is_new_rejection(o) for o in report.outcomes) and not dry_run):
        sys.exit(1)


def _record_dict(record: DeliveryRecord) -> dict[str, object]:
    return {
        "digest_id": record.digest_id,
        "profile": record.profile,
        "destination": record.destination,
        "digest_date": record.digest_date.isoformat(),
        "status": record.status,
        "papers": [p.paper_id for p in record.papers],
        "attempts": record.attempts,
        "error": record.error,
        "external_id": record.external_id,
        "created_at": record.created_at.isoformat(),
        "sent_at": record.sent_at.isoformat() if record.sent_at else None,
        "note": form_note(record.destination, record.progress) or None,
    }


@click.command()
@click.option("--profile", "profile_name", help="Only this profile.")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@pass_app
@handle_errors
def history(app: AppContext, profile_name: str | None, limit: int, as_json: bool) -> None:
    """What was sent where and when, newest first, with status and error."""
    records = load_history(app.store, profile=profile_name, limit=limit)
    if profile_name is not None and not records:
        # a misspelt name is an error, not an empty list; a profile with digests in the ledger
        # is listed even when it is not configured (removed since, or a person's ``@U…``)
        app.settings.profile(profile_name)
    if as_json:
        print_json([_record_dict(r) for r in records])
        return
    for record in records:
        when = record.sent_at.strftime("%Y-%m-%d %H:%M") if record.sent_at else " " * 16
        count = f"{len(record.papers)} papers"
        if record.status == "sent" and record.progress.get(LEFT_OUT):  # an email cut to fit
            count = f"{int(record.progress.get('kept') or 0)} of {count}"
        line = (
            f"{record.digest_date.isoformat()}  {record.status:<10} {when}  "
            f"{record.profile} → {record.destination}  {count}"
        )
        if record.attempts > 1:
            line += f", {record.attempts} attempts"
        if record.error and record.status != "sent":
            line += f"  error: {record.error.removeprefix(f'{record.destination}: ')}"
        if record.status == "sent" and record.progress.get("form") in ("plain", "compact"):
            if record.destination.startswith("email:"):
                line += f"  ({form_note(record.destination, record.progress)})"
            else:
                line += (
                    f"  (as plain text: Slack refused the blocks, {record.progress.get('refused')})"
                )
        click.echo(line)
    if not records:
        click.echo("nothing sent yet", err=True)


COMMANDS = [send, history]
