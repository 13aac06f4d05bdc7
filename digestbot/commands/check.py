"""``digestbot check``: the config file checked for what running it would meet."""

from __future__ import annotations

import sys

import click

from digestbot.check import check_settings
from digestbot.cli import AppContext, handle_errors, pass_app, print_json

MARKS = {"ok": "ok", "warning": "warning", "error": "ERROR"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_app
@handle_errors
def check(app: AppContext, as_json: bool) -> None:
    """Check the config: crons, templates, destinations' credentials, the drops folder, the
    embedding model and the database (reached, never created or upgraded). Exit 1 on an error."""
    settings = app.settings  # a bad key or value: the usual error, exit 2
    findings = check_settings(settings, now=app.now())
    errors = sum(1 for f in findings if f.level == "error")
    warnings = sum(1 for f in findings if f.level == "warning")
    if as_json:
        print_json(
            {
                "config": settings.source,
                "ok": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "findings": [f.as_dict() for f in findings],
            }
        )
    else:
        click.echo(f"config: {settings.source}")
        for finding in findings:
            click.echo(f"  {MARKS[finding.level]:<8}{finding.key}: {finding.message}")
        click.echo(f"{errors} errors, {warnings} warnings")
    if errors:
        sys.exit(1)


COMMANDS = [check]
