"""Ingest figures (issue 2): 100,000 synthetic papers, papers/s end to end, peak RSS, rank time.

    .venv/bin/python bench/ingest.py [--papers 100000]

Prints: ingest throughput (parse + dedup + write, one transaction per file), the raw
SQLite executemany ceiling for the same rows, peak RSS of the ingest, and the wall time
of `digestbot rank` for one profile on the resulting store.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.synth import write_drops
from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.sources.drops import read_drop
from digestbot.store import SqlStore


def raw_ceiling(files: list[Path], db: Path) -> float:
    rows = [
        (p.title, p.abstract, p.authors_count, p.upvotes)
        for f in files
        for p in read_drop(f).papers
    ]
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (title TEXT, abstract TEXT, authors INT, upvotes INT)")
    t0 = time.perf_counter()
    with conn:
        conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?)", rows)
    elapsed = time.perf_counter() - t0
    conn.close()
    return len(rows) / elapsed


def child_ingest(drops: Path, url: str) -> None:
    """Run in a fresh process so that its peak RSS is the ingest's own."""
    store = SqlStore.open(url)
    files = list_drop_files([drops])
    t0 = time.perf_counter()
    report = ingest_paths(store, [], files=files, now=datetime.now(UTC))
    elapsed = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert report.ok, report.as_dict()["files"]
    print(f"{report.papers_new} {elapsed} {rss}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("DROPS", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_ingest(Path(args.child[0]), args.child[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_drops(root / "drops", papers=args.papers, per_file=1000)
        print(f"generated {args.papers} papers in {time.perf_counter() - t0:.1f}s")
        url = f"sqlite:///{root / 'db.sqlite3'}"
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(root / "drops"), url],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        new, elapsed, rss = int(out[0]), float(out[1]), float(out[2])
        rate = new / elapsed
        print(f"ingest: {new} papers in {elapsed:.2f}s = {rate:,.0f} papers/s (parse+dedup+write)")
        print(f"peak RSS of the ingesting process: {rss:.0f} MB")
        store = SqlStore.open(url)
        files = list_drop_files([root / "drops"])
        t0 = time.perf_counter()
        again = ingest_paths(store, [], files=files, now=datetime.now(UTC))
        print(
            f"re-ingest (all skipped): {time.perf_counter() - t0:.2f}s, "
            f"{again.count('skipped')} files skipped"
        )
        store.close()
        ceiling = raw_ceiling(files, root / "raw.sqlite3")
        print(f"raw sqlite3 executemany ceiling: {ceiling:,.0f} rows/s")
        config = root / "config.yaml"
        config.write_text(
            f"database_url: {url}\nprofiles:\n  - name: bench\n"
            "    description: Linear attention and state space models for long context.\n"
            "    keywords: [linear attention, mamba, state space model]\n"
        )
        cmd = [sys.executable, "-m", "digestbot", "--config", str(config)]
        for label in ("first", "second"):
            t0 = time.perf_counter()
            subprocess.run(
                [*cmd, "rank", "--profile", "bench", "--json", "--limit", "10"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            print(
                f"digestbot rank ({label} run, {new} papers): {time.perf_counter() - t0:.2f}s wall"
            )


if __name__ == "__main__":
    main()
