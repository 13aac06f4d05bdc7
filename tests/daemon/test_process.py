"""``digestbot run`` as a real process: drops picked up, one scheduler per database, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from digestbot.store import SqlStore
from digestbot.store.daemon import load_lock
from tests.conftest import REPO, SEEDS, write_config
from tests.daemon.fakes import ledger_rows
from tests.feed_server import Answer, FeedServer, Route

POLL = 0.2
SETTLE = 0.3


def wait_for(check: Callable[[], object], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``check()`` was true; fails after ``timeout``."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "drops").mkdir()
    return write_config(
        tmp_path,
        "database_url: sqlite:///data/digestbot.sqlite3\n"
        f"drops: {{path: drops, poll_seconds: {POLL}, settle_seconds: {SETTLE}}}\n"
        "profiles:\n"
        "  - name: attn\n"
        "    keywords: [attention]\n"
        '    schedule: {cron: "* * * * *"}\n',
    )


def start(args: list[str], *, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    env["PYTHONPATH"] = str(REPO)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
        )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    opened = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'digestbot.sqlite3'}")
    yield opened
    opened.close()


def stop(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> tuple[int, float]:
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"still running {timeout} s after SIGTERM")
    return code, time.monotonic() - began


def test_run_ingests_a_drop_within_poll_plus_one_second_and_refuses_a_second_run(
    tmp_path: Path, config: Path, store: SqlStore
) -> None:
    log = tmp_path / "run.log"
    daemon = start(["-m", "digestbot", "--config", str(config), "run"], cwd=tmp_path, log=log)
    try:
        wait_for(lambda: load_lock(store, "scheduler") is not None, timeout=15)
        wait_for(lambda: "running:" in log.read_text(), timeout=5)

        # a second scheduler on the same database is refused, naming the first
        second = subprocess.run(
            [sys.executable, "-m", "digestbot", "--config", str(config), "run"],
            cwd=tmp_path, capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 2
        assert "another scheduler is running on this database" in second.stderr
        assert f":{daemon.pid}:" in second.stderr

        # a file copied into the folder while running
        shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", tmp_path / "drops" / "today.txt")
        took = wait_for(lambda: store.recent_files(), timeout=POLL + 1.0 + SETTLE + 1.0)
        assert took <= POLL + 1.0, f"ingested after {took:.2f} s"
        assert store.count_papers() == 11
    finally:
        code, elapsed = stop(daemon)
    assert code == 0, log.read_text()
    assert elapsed < 10
    assert load_lock(store, "scheduler") is None
    # and it is in the next digest
    digest = subprocess.run(
        [sys.executable, "-m", "digestbot", "--config", str(config), "digest", "--profile", "attn"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    titles = [paper.title for paper in store.load_papers()]
    assert digest.stdout.startswith("# 3 new papers for attn")
    assert sum(title in digest.stdout for title in titles) == 3


@pytest.mark.parametrize(
    ("delay", "final"),
    [(2.0, "sent"), (60.0, "pending")],
    ids=["send-finishes", "send-stuck-left-pending"],
)
def test_sigterm_during_a_send_exits_0_within_10_s_and_leaves_a_consistent_ledger(
    tmp_path: Path, config: Path, store: SqlStore, delay: float, final: str
) -> None:
    log = tmp_path / "harness.log"
    process = start(["-m", "tests.daemon.harness", str(config), str(delay)], cwd=REPO, log=log)
    try:
        wait_for(lambda: [r for r in ledger_rows(store) if r[2] == "pending"], timeout=15)
    finally:
        code, elapsed = stop(process)
    output = log.read_text()
    assert code == 0, output
    assert elapsed < 10
    [(profile, _day, status, _for)] = ledger_rows(store)
    assert (profile, status) == ("attn", final)
    assert load_lock(store, "scheduler") is None
    if final == "sent":
        assert "exited cleanly" in output
    else:
        assert "still running after" in output


def test_sigterm_during_run_once_lets_go_of_the_lock_within_10_s(
    tmp_path: Path, store: SqlStore, server: FeedServer
) -> None:
    # ``run --once`` from a systemd timer is stopped with SIGTERM too: it must not leave the
    # scheduler lock behind (the daemon would be refused for 90 s) nor take new work
    server.routes["/slow"] = Route(script=[Answer(200, b" " * 200, trickle=0.2)])
    (tmp_path / "drops").mkdir()
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/digestbot.sqlite3\n"
        "drops: {path: drops}\n"
        "profiles: [{name: attn, keywords: [attention]}]\n"
        f"feeds: [{{name: slow, url: '{server.url('/slow')}', timeout: 60}}]\n",
    )
    log = tmp_path / "once.log"
    process = start(
        ["-m", "digestbot", "--config", str(config), "run", "--once"], cwd=tmp_path, log=log
    )
    try:
        wait_for(lambda: server.hits("/slow") == 1, timeout=30)
    finally:
        code, elapsed = stop(process)
    output = log.read_text()
    assert code == 1, output  # not everything was done
    assert elapsed < 10
    assert load_lock(store, "scheduler") is None
    assert "Traceback" not in output


def test_sighup_neither_kills_run_nor_reloads_and_says_so(
    tmp_path: Path, config: Path, store: SqlStore
) -> None:
    # ``kill -HUP`` (a log rotation's postrotate, a closed terminal, a reload attempt) killed
    # the daemon at once by default, holding its lock; it keeps running and tells the admin
    log = tmp_path / "run.log"
    daemon = start(["-m", "digestbot", "--config", str(config), "run"], cwd=tmp_path, log=log)
    try:
        wait_for(lambda: "running:" in log.read_text(), timeout=20)
        daemon.send_signal(signal.SIGHUP)
        wait_for(lambda: "SIGHUP" in log.read_text(), timeout=5)
        time.sleep(0.5)
        assert daemon.poll() is None, log.read_text()
    finally:
        code, elapsed = stop(daemon)
    assert code == 0, log.read_text()
    assert elapsed < 10
    assert "restart" in log.read_text()
    assert load_lock(store, "scheduler") is None
