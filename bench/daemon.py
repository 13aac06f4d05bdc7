"""Figures for the daemon: idle CPU and memory of ``digestbot run``, and drop-to-store latency.

    .venv/bin/python bench/daemon.py [--seconds 30] [--poll 1.0] [--settle 0.5]

Starts a real ``digestbot run`` on a fresh SQLite database, measures its CPU time
and RSS (psutil) while idle, then drops the four sample files one at a time
(copied in, so their mtime is new, and moved in whole with an old mtime) and
times each from the moment it is complete in the folder to its row in
``ingested_files``. Targets: CPU < 1 % of a core, RSS < 150 MB, every drop
within ``poll_seconds`` + 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
SEEDS = sorted((REPO / "seeds").glob("*.txt"))


def count_files(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM ingested_files").fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def wait_until(check: Callable[[], object], timeout: float) -> float:
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"timed out after {timeout} s")
        time.sleep(0.005)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=0.5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="digestbot-bench-"))
    drops, staging = work / "drops", work / "staging"
    drops.mkdir()
    staging.mkdir()
    db = work / "data" / "digestbot.sqlite3"
    (work / "config.yaml").write_text(
        "database_url: sqlite:///data/digestbot.sqlite3\n"
        f"drops: {{path: drops, poll_seconds: {args.poll}, settle_seconds: {args.settle}}}\n"
        "profiles:\n"
        "  - {name: attn, keywords: [attention], schedule: {cron: '0 8 * * mon-fri'}}\n"
        "  - {name: vision, keywords: [vision], schedule: {cron: '30 7 * * *', "
        "timezone: Europe/Berlin}}\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "digestbot", "--config", "config.yaml", "run"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc = psutil.Process(daemon.pid)
        wait_until(lambda: db.exists(), timeout=30)
        time.sleep(3.0)  # imports done, first scans made
        before = proc.cpu_times()
        started = time.perf_counter()
        peak_rss = 0
        while time.perf_counter() - started < args.seconds:
            peak_rss = max(peak_rss, proc.memory_info().rss)
            time.sleep(0.5)
        after = proc.cpu_times()
        wall = time.perf_counter() - started
        cpu = (after.user - before.user) + (after.system - before.system)
        threads = proc.num_threads()

        latencies: list[tuple[str, float]] = []
        for index, seed in enumerate(SEEDS):
            have = count_files(db)
            if index % 2 == 0:
                shutil.copy(seed, drops / seed.name)  # written now: waits settle_seconds
                how = "copied"
            else:
                shutil.copy2(seed, staging / seed.name)  # old mtime, then moved in whole
                os.replace(staging / seed.name, drops / seed.name)
                how = "moved"

            def ingested(have: int = have) -> bool:
                return count_files(db) > have

            took = wait_until(ingested, timeout=args.poll + 30)
            latencies.append((how, took))
    finally:
        daemon.terminate()
        code = daemon.wait(15)
        shutil.rmtree(work, ignore_errors=True)

    print(f"digestbot run, idle for {wall:.1f} s (poll_seconds={args.poll}, 2 profiles):")
    print(f"  CPU: {cpu:.3f} s = {100 * cpu / wall:.3f} % of one core   (target < 1 %)")
    print(f"  RSS: peak {peak_rss / 2**20:.1f} MB, {threads} threads   (target < 150 MB)")
    print(
        f"drop -> ingested_files (settle_seconds={args.settle}, target <= {args.poll + 1:.1f} s):"
    )
    for (how, took), seed in zip(latencies, SEEDS, strict=True):
        print(f"  {seed.name}  {how:<6} {took:.3f} s")
    values = [t for _, t in latencies]
    print(f"  mean {statistics.mean(values):.3f} s, max {max(values):.3f} s")
    print(f"exit status after SIGTERM: {code}")


if __name__ == "__main__":
    main()
