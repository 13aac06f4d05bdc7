"""The command line. ``DigestError`` becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from typing import Any, Protocol, TypeVar, cast

import click

from digestbot import __version__
from digestbot.config import Settings, load_settings
from digestbot.errors import DigestError
from digestbot.logs import LogFormat, configure_logging, redact_secrets
from digestbot.store import SqlStore

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("digestbot")


@dataclass
class AppContext:
    """What every command needs, built lazily: settings, the store, the clock."""

    config_path: str | None
    debug: bool
    now_override: datetime | None
    _settings: Settings | None = None
    _store: SqlStore | None = None
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            redact_secrets(self._settings.secret_values())  # whatever a library logs
        return self._settings

    @property
    def store(self) -> SqlStore:
        if self._store is None:
            self._store = SqlStore.open(self.settings.database_url)
            self.cleanups.append(self._store.close)
        return self._store

    def now(self) -> datetime:
        return self.now_override or datetime.now(UTC)


pass_app = click.make_pass_decorator(AppContext)


def print_json(value: Any) -> None:
    """JSON on stdout: indented for a person at a terminal, compact otherwise (the C
    encoder: ``indent`` would fall back to the pure-Python one, seconds on 100k papers)."""
    if sys.stdout.isatty():
        click.echo(json.dumps(value, ensure_ascii=False, indent=2))
    else:
        click.echo(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def print_json_text(text: str) -> None:
    """JSON already encoded compactly: as is, or indented for a person at a terminal."""
    if sys.stdout.isatty():
        print_json(json.loads(text))
    else:  # one write: ``click.echo`` costs ~4x as much on 25 MB of JSON
        sys.stdout.write(text + "\n")
        sys.stdout.flush()


def _parse_now(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter("use ISO 8601, e.g. 2026-11-23T08:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def handle_errors(func: F) -> F:
    """Run a command; a ``DigestError`` is one clear line and exit 2 (a traceback with --debug)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().find_object(AppContext)
        try:
            return func(*args, **kwargs)
        except DigestError as exc:
            if app is not None and app.debug:
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a path the operator gave cannot be read or written
            if (app is not None and app.debug) or isinstance(exc, BrokenPipeError):
                raise
            click.echo(f"error: {_os_error(exc)}", err=True)
            sys.exit(2)
        finally:
            if app is not None:
                for cleanup in reversed(app.cleanups):
                    cleanup()
                app.cleanups.clear()

    return wrapper  # type: ignore[return-value]


def _os_error(exc: OSError) -> str:
    """``afile/digests: not a directory``: the path first, as the other errors name theirs."""
    reason = exc.strerror.lower() if exc.strerror else str(exc)
    if exc.filename is None:
        return reason
    target = f" -> {exc.filename2}" if exc.filename2 is not None else ""
    return f"{exc.filename}{target}: {reason}"


class Advance(Protocol):
    """Moves a progress bar on by ``count`` (one item by default)."""

    def __call__(self, count: int = 1, /) -> None: ...


@contextmanager
def progress_bar(total: int, *, label: str, enabled: bool) -> Iterator[Advance]:
    """A rich progress bar on a terminal; a no-op elsewhere."""
    if not enabled or not sys.stderr.isatty():
        yield lambda count=1, /: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
        console=Console(stderr=True),  # the terminal it checked; stdout stays for results
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda count=1, /: bar.advance(task, count)


# Which module defines each command. Commands are imported when used, so that
# `digestbot rank` does not pay for importing Slack, feeds and the scheduler.
COMMAND_MODULES = {
    "ingest": "papers",
    "papers": "papers",
    "show": "papers",
    "rank": "ranking",
    "digest": "papers",
    "demo": "papers",
    "feedback": "ranking",
    "explain": "ranking",
    "embed": "ranking",
    "fetch": "feeds",
    "feeds": "feeds",
    "send": "delivery",
    "history": "delivery",
    "subscribers": "subscribers",
    "serve": "serve",
    "run": "daemon",
    "status": "daemon",
    "check": "check",
}


class LazyGroup(click.Group):
    """A group whose commands live in ``digestbot.commands.<module>.COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"digestbot.commands.{module_name}")
        for command in module.COMMANDS:
            if command.name == cmd_name:
                return cast(click.Command, command)
        raise RuntimeError(f"digestbot.commands.{module_name} does not define {cmd_name!r}")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="digestbot")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="DIGESTBOT_CONFIG",
    help="Config file (or DIGESTBOT_CONFIG; default: ./config.yaml if present, else the "
    "embedded defaults).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Log what happens (INFO level).")
@click.option("--now", "now", callback=_parse_now, hidden=True, help="Pretend it is this time.")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or as one JSON object per line.",
)
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    debug: bool,
    verbose: bool,
    now: datetime | None,
    log_format: LogFormat,
) -> None:
    """digestbot: reads every new paper once, decides who cares, and tells them."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    configure_logging(level, fmt=log_format)
    ctx.obj = AppContext(config_path=config_path, debug=debug, now_override=now)


def run() -> None:  # pragma: no cover - console script entry point
    main()


__all__ = [
    "AppContext",
    "handle_errors",
    "main",
    "pass_app",
    "print_json",
    "print_json_text",
    "progress_bar",
]
