"""Shared fixtures: a real SQLite store on tmp_path, the sample drops, a CLI runner, the
Slack Web API stand-in (``slack_api``) and a real SMTP server with STARTTLS and AUTH
(``smtp_server``), and a feed server (``server``) with an ``http`` client, all on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from click.testing import CliRunner, Result

from digestbot.cli import main
from digestbot.store import SqlStore
from tests.feed_server import FeedServer, serving
from tests.slack_api import SlackApi, running_slack_api
from tests.smtp_server import SmtpServer

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POSTGRES_URL = os.environ.get("DIGESTBOT_TEST_POSTGRES_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``postgres`` run only where a server is given (CI starts one)."""
    if POSTGRES_URL:
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker("postgres") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _lexical_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ranking.embedding_model: auto`` would pick up the packaged model where the semantic
    extra is installed (CI): tests rank lexically unless they name a model themselves."""
    monkeypatch.setenv("DIGESTBOT_AUTO_EMBEDDINGS", "0")


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL store's ranking index goes to ``$XDG_CACHE_HOME``: the test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A private copy of the four sample drops."""
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'digestbot.sqlite3'}"


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    opened = SqlStore.open(db_url)
    yield opened
    opened.close()


def write_config(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run ``digestbot`` in-process in tmp_path; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIGESTBOT_CONFIG", raising=False)

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    return run


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def open_postgres_store() -> SqlStore:
    """A fresh schema on the PostgreSQL server CI started (every table dropped first)."""
    assert POSTGRES_URL
    from digestbot.store.schema import metadata

    opened = SqlStore.open(POSTGRES_URL, create=False)
    metadata.drop_all(opened.engine)
    opened.create_schema()
    return opened


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, db_url: str) -> Iterator[SqlStore]:
    """The store on SQLite, and on PostgreSQL where a server is given."""
    opened = open_postgres_store() if request.param == "postgres" else SqlStore.open(db_url)
    yield opened
    opened.close()


@pytest.fixture
def slack_api() -> Iterator[SlackApi]:
    with running_slack_api() as api:
        yield api


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp_server(ca: trustme.CA) -> Iterator[SmtpServer]:
    server = SmtpServer(ca).start()
    yield server
    server.stop()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    """A feed server on 127.0.0.1 (tests.feed_server): routes, answers, the requests seen."""
    yield from serving()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False) as client:
        yield client
