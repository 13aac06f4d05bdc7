"""The search index's catch-up shows its progress on a terminal (the one after an upgrade
indexes every paper: ~27 s at 100,000 on PostgreSQL), and nothing elsewhere: the counts
its steps report add up to the backlog the bar is given as its total."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.search import catch_up_search_index, count_search_backlog
from tests.conftest import NOW, SEEDS, write_config
from tests.terminal import run_on_terminal

CONFIG = """
database_url: sqlite:///data/db.sqlite3
drops: {path: drops}
profiles:
  - name: compression
    keywords: [quantization, distillation, pruning]
"""


def test_the_steps_report_counts_that_add_up_to_the_backlog(any_store: SqlStore) -> None:
    items = [Paper(title=f"Walrus {i}", abstract="On ice.") for i in range(12)]
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, items, now=NOW)
    assert count_search_backlog(any_store) == 12
    steps: list[int] = []
    assert catch_up_search_index(any_store, step=5, on_step=steps.append) == 12
    assert steps == [5, 5, 2]
    assert count_search_backlog(any_store) == 0
    assert catch_up_search_index(any_store, step=5, on_step=steps.append) == 0
    assert steps == [5, 5, 2]  # nothing to do: no call


def test_an_ingest_whose_stderr_is_no_terminal_shows_no_progress(tmp_path: Path, cli) -> None:
    shutil.copytree(SEEDS, tmp_path / "drops")
    write_config(tmp_path, CONFIG)
    result = cli("ingest")
    assert result.exit_code == 0
    assert result.stdout == "files: 4 new, 0 skipped, 0 failed; papers: 186 new, 2 merged\n"
    assert result.stderr == ""


def test_an_ingest_on_a_terminal_shows_the_search_index_catching_up(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "drops")
    config = write_config(tmp_path, CONFIG)
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    args = [sys.executable, "-m", "digestbot", "--config", str(config), "ingest"]
    run = run_on_terminal(args, env=env, cwd=tmp_path)
    assert run.returncode == 0
    assert run.stdout == "files: 4 new, 0 skipped, 0 failed; papers: 186 new, 2 merged\n"
    screen = run.screen
    assert "ingesting" in screen and "4/4" in screen
    assert "search index" in screen and "186/186" in screen  # every paper, to the end


def test_an_ingest_with_nothing_new_catches_up_a_search_index_left_behind(
    tmp_path: Path, cli
) -> None:
    """An upgraded database's search index starts empty; a ``digestbot ingest`` finding no
    new file indexes it then (it waited for the first new paper or search before)."""
    (tmp_path / "drops").mkdir()
    write_config(tmp_path, CONFIG)
    (tmp_path / "data").mkdir()
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}")
    try:
        items = [Paper(title=f"Walrus {i}", abstract="On ice.") for i in range(12)]
        with store.transaction() as conn:
            store.upsert_papers(conn, items, now=NOW)
        assert count_search_backlog(store) == 12
        result = cli("ingest")
        assert result.exit_code == 0
        assert result.stdout == "files: 0 new, 0 skipped, 0 failed; papers: 0 new, 0 merged\n"
        assert count_search_backlog(store) == 0
    finally:
        store.close()
