"""Ingest figures (issue 2): 100,000 synthetic papers, papers/s end to end, peak RSS, rank time.

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python bench/ingest.py [--papers 100000] [--runs 3]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:55439/digestbot_test]

Prints, per run on a fresh database: ingest throughput (parse + dedup + write, one
transaction per file; the full-text index synced after it, timed apart, in steps of
``--step`` pks (default digestbot's: 5,000 on PostgreSQL, 20,000 on SQLite; one
transaction each: the longest is the longest hold of the write lock and the longest
statement; ``--step 1000000000`` is the single statement of before), then the time of a
first search), CPU time of the writer, of the parsing workers and (PostgreSQL on this
machine) of the server, and peak RSS (VmHWM of the writer and of each
worker, and the sampled peak of their sum). Then the best run, a re-ingest (all
skipped), the raw SQLite executemany ceiling for the same rows, and the wall time of
`digestbot rank` for one profile (the first run builds the ranking index).

With ``--database-url`` (a PostgreSQL server's database) each run ingests into a fresh
database ``bench_ingest_<run>`` on that server instead of a SQLite file (the SQLite
ceiling is still printed, for comparison); the ranking index goes to a temporary
``$XDG_CACHE_HOME``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.databases import drop_server_database, is_sqlite, server_database
from bench.synth import write_drops
from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.sources.drops import read_drop
from digestbot.store import SqlStore
from digestbot.store.search import catch_up_search_index, search_papers
from digestbot.store.sql import take_write_lock


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


def _vm_kib(pid: int | str, key: str) -> int:
    """``VmHWM``/``VmRSS`` of a process in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Every 100 ms: the RSS of this process plus its children (the parsing workers), and
    each child's own peak (VmHWM), so that a forked or spawned pool is counted properly."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.peak_total_kib = 0
        self.child_hwm_kib: dict[int, int] = {}

    def _children(self) -> list[int]:
        """Child pids, from each thread's ``children`` list (cheap: no scan of /proc)."""
        out: list[int] = []
        for task in Path("/proc/self/task").iterdir():
            try:
                out.extend(int(pid) for pid in (task / "children").read_text().split())
            except OSError:
                continue
        return out

    def run(self) -> None:
        while not self.stop.wait(0.1):
            total = _vm_kib("self", "VmRSS")
            for pid in self._children():
                total += _vm_kib(pid, "VmRSS")
                hwm = _vm_kib(pid, "VmHWM")
                self.child_hwm_kib[pid] = max(self.child_hwm_kib.get(pid, 0), hwm)
            self.peak_total_kib = max(self.peak_total_kib, total)


class LockWaiter(threading.Thread):
    """Every 0.2 s: a transaction that takes the store's write lock, as a writer does
    first (writing nothing); ``waits`` holds how long each waited for it."""

    def __init__(self, store: SqlStore) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stop = threading.Event()
        self.waits: list[float] = []

    def run(self) -> None:
        while not self.stop.wait(0.2):
            began = time.perf_counter()
            with self.store.transaction() as conn:
                take_write_lock(conn)
            self.waits.append(time.perf_counter() - began)


def _proc_cpu(pid: int | str, *, reaped: bool = False) -> float:
    """User + system CPU seconds of a process (and of its reaped children, if asked)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if reaped:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def server_cpu(store: SqlStore) -> float | None:
    """CPU seconds used so far by a PostgreSQL server on this machine: its postmaster, the
    backends that ended (reaped by it) and those still running. None where it cannot be
    read (SQLite, a remote server, no right to ``data_directory``)."""
    if store.engine.dialect.name != "postgresql":
        return None
    try:
        with store.engine.connect() as conn:
            data = conn.exec_driver_sql("SHOW data_directory").scalar_one()
        pid = int((Path(data) / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, sa.exc.SQLAlchemyError):
        return None
    return _proc_cpu(pid, reaped=True) + sum(_proc_cpu(child) for child in children)


def _spent(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def child_ingest(drops: Path, url: str, *, step: int | None) -> None:
    """Run in a fresh process so that its peak RSS is the ingest's own. Prints one JSON line."""
    store = SqlStore.open(url)
    files = list_drop_files([drops])
    sampler = RssSampler()
    sampler.start()
    server0 = server_cpu(store)
    cpu0 = os.times()
    t0 = time.perf_counter()
    report = ingest_paths(store, [], files=files, now=datetime.now(UTC), index_search=False)
    elapsed = time.perf_counter() - t0
    cpu1 = os.times()
    server1 = server_cpu(store)
    t1 = time.perf_counter()
    steps: list[float] = []  # seconds each step took (its transaction, the write lock held)

    def timed_step(_done: int) -> None:
        steps.append(time.perf_counter() - t1 - sum(steps))

    writer = LockWaiter(store)  # a writer (the daemon's ingest) beside the catch-up
    writer.start()
    cpu_search0 = os.times()
    indexed = catch_up_search_index(store, step=step, on_step=timed_step)
    search_s = time.perf_counter() - t1
    cpu_search1 = os.times()
    writer.stop.set()
    writer.join()
    server2 = server_cpu(store)
    t2 = time.perf_counter()
    found = search_papers(store, "state space models", limit=5)
    first_search_s = time.perf_counter() - t2
    sampler.stop.set()
    sampler.join()
    assert report.ok, report.as_dict()["files"]
    # PostgreSQL before version 5 indexed on write (nothing to sync)
    assert indexed == report.papers_new or not is_sqlite(url), (indexed, report.papers_new)
    assert found.papers, "the search found nothing"
    print(
        json.dumps(
            {
                "papers": report.papers_new,
                "seconds": elapsed,
                "cpu_parent": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system),
                "cpu_workers": (cpu1.children_user - cpu0.children_user)
                + (cpu1.children_system - cpu0.children_system),
                "cpu_server": _spent(server0, server1),
                "search_index_seconds": search_s,
                "search_index_cpu": (cpu_search1.user - cpu_search0.user)
                + (cpu_search1.system - cpu_search0.system),
                "search_index_steps": len(steps),
                "search_index_longest_step": max(steps, default=0.0),
                "writer_longest_wait": max(writer.waits, default=0.0),
                "search_index_cpu_server": _spent(server1, server2),
                "first_search_seconds": first_search_s,
                "hwm_parent_mb": _vm_kib("self", "VmHWM") / 1024,
                "hwm_workers_mb": [kib / 1024 for kib in sampler.child_hwm_kib.values()],
                "peak_total_mb": sampler.peak_total_kib / 1024,
                "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def cli_ingest(drops: Path, url: str, root: Path) -> None:
    """A whole ``digestbot ingest`` of ``drops`` (store, then the search and ranking indexes)
    into a fresh database, as a child process: wall, its CPU (``wait4``), the server's
    CPU, peak RSS; then the time of a first search (nothing left to catch up)."""
    config = root / "cli.yaml"
    config.write_text(f"database_url: {url}\n", encoding="utf-8")
    store = SqlStore.open(url)
    server0 = server_cpu(store)
    began = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "digestbot", "--config", str(config), "ingest", str(drops)],
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    assert os.waitstatus_to_exitcode(status) == 0, "digestbot ingest failed"
    server = _spent(server0, server_cpu(store))
    t0 = time.perf_counter()
    found = search_papers(store, "state space models", limit=5)
    first_search = time.perf_counter() - t0
    assert found.papers, "the search found nothing"
    count = store.count_papers()
    store.close()
    print(
        f"digestbot ingest of {count} papers: wall {wall:.1f}s, "
        f"CPU {usage.ru_utime + usage.ru_stime:.1f}s"
        + _server_part(server)
        + f", peak RSS {usage.ru_maxrss / 1024:.0f} MB; then a first search "
        f"{first_search * 1000:.0f} ms"
    )


def _server_part(seconds: float | None) -> str:
    return "" if seconds is None else f" + server {seconds:.2f}s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="ingests on fresh databases")
    parser.add_argument("--no-rank", action="store_true", help="skip the rank timings")
    parser.add_argument(
        "--database-url", help="a PostgreSQL database: runs use fresh ones on its server"
    )
    parser.add_argument(
        "--cli-runs",
        type=int,
        default=0,
        help="also time whole `digestbot ingest` commands (fresh databases), best of N",
    )
    parser.add_argument(
        "--step", type=int, help="pks a step of the search index's catch-up (default: digestbot's)"
    )
    parser.add_argument("--child", nargs=2, metavar=("DROPS", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("DIGESTBOT_AUTO_EMBEDDINGS", "0")  # lexical figures (issue 2)
    if args.child:
        child_ingest(Path(args.child[0]), args.child[1], step=args.step)
        return
    server = args.database_url if args.database_url and not is_sqlite(args.database_url) else None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["XDG_CACHE_HOME"] = str(root / "cache")  # a server store's ranking index
        t0 = time.perf_counter()
        write_drops(root / "drops", papers=args.papers, per_file=1000)
        print(f"generated {args.papers} papers in {time.perf_counter() - t0:.1f}s")
        runs = []
        child_cmd = [sys.executable, __file__]
        child_cmd += ["--step", str(args.step)] if args.step else []
        for run in range(args.runs):
            db = root / f"db{run}.sqlite3"
            url = server_database(server, f"bench_ingest_{run}") if server else f"sqlite:///{db}"
            out = subprocess.run(
                [*child_cmd, "--child", str(root / "drops"), url],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            result = json.loads(out.splitlines()[-1])
            runs.append(result)
            rate = result["papers"] / result["seconds"]
            print(
                f"run {run + 1}: ingest {result['papers']} papers in {result['seconds']:.2f}s "
                f"= {rate:,.0f} papers/s (parse+dedup+write); CPU parent "
                f"{result['cpu_parent']:.2f}s + workers {result['cpu_workers']:.2f}s"
                + _server_part(result.get("cpu_server"))
                + f"; search index {result['search_index_seconds']:.2f}s after"
                + f" (CPU {result['search_index_cpu']:.2f}s"
                + _server_part(result.get("search_index_cpu_server"))
                + ")"
                + f" in {result['search_index_steps']} steps (longest "
                + f"{result['search_index_longest_step']:.2f}s; a writer beside it waited "
                + f"{result['writer_longest_wait']:.2f}s at most for the write lock)"
                + f", then a first search {result['first_search_seconds'] * 1000:.0f} ms; "
                f"peak RSS parent {result['hwm_parent_mb']:.0f} MB (VmHWM), workers "
                + ", ".join(f"{mb:.0f}" for mb in result["hwm_workers_mb"])
                + f" MB, sum sampled {result['peak_total_mb']:.0f} MB"
            )
            if run + 1 < args.runs:
                if server:
                    drop_server_database(url)
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
        best = max(runs, key=lambda r: r["papers"] / r["seconds"])
        print(
            f"ingest best of {args.runs}: {best['papers'] / best['seconds']:,.0f} papers/s; "
            f"peak RSS (largest of the runs): parent "
            f"{max(r['hwm_parent_mb'] for r in runs):.0f} MB, parent + workers "
            f"{max(r['peak_total_mb'] for r in runs):.0f} MB"
        )
        new = best["papers"]
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
        for run in range(args.cli_runs):
            name = f"bench_ingest_cli_{run}"
            cli_url = server_database(server, name) if server else f"sqlite:///{root / name}"
            cli_ingest(root / "drops", cli_url, root)
            if server:
                drop_server_database(cli_url)
        if args.no_rank:
            return
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
            note = " (builds the ranking index)" if label == "first" else ""
            print(
                f"digestbot rank ({label} run, {new} papers): "
                f"{time.perf_counter() - t0:.2f}s wall{note}"
            )


if __name__ == "__main__":
    main()
