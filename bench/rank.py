"""Speed of ``digestbot rank`` and of building the ranking index, on a 100,000-paper store.

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python -m bench.rank [--papers 100000] [--runs 3]
        [--workdir /tmp/digestbot-speed] [--build] [--ingest] [--ingest-into 1000]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:55439/digestbot_test]

Every figure is a child process's wall time and CPU time (user + sys), best of
``--runs`` (the machine is shared: the best run is the least disturbed one).

- ``rank --profile p --json`` (every paper) and ``rank --profile p --limit 10``, start-up
  included, on the store ``bench/relevance_speed.py`` generates (made here if missing);
- ``--build``: building the ranking index of the whole store from scratch (a fresh index
  folder), with the child's peak RSS;
- ``--ingest``: ``digestbot ingest`` of a synthetic drops folder of ``--papers`` papers
  into an empty store (parse, store, then the index), with its peak RSS;
- ``--ingest-into N``: ``digestbot ingest`` of N new papers into a copy of the store whose
  index is up to date (the daily case: parse, store, then one new index segment).

With ``--database-url`` (a PostgreSQL server's database) the store is the database
``bench_speed_<papers>`` on that server (made here if missing), copies are made with
``CREATE DATABASE ... TEMPLATE``, and the ranking index lives in
``<workdir>/cache`` (``$XDG_CACHE_HOME``: the default folder of a server database).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.databases import (  # noqa: E402
    copy_store,
    database_exists,
    database_name,
    server_database,
    server_url,
)
from bench.relevance_speed import NOW, fill, profiles  # noqa: E402
from bench.synth import write_drops  # noqa: E402
from digestbot.ingest import ingest_paths, list_drop_files  # noqa: E402
from digestbot.ranking.persist import default_index_dir  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402
from digestbot.store.search import sync_search_index  # noqa: E402


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mb: float


def run_child(args: list[str]) -> Run:
    """One child process: wall time, user + sys CPU and peak RSS (from ``wait4``)."""
    env = {**os.environ, "DIGESTBOT_AUTO_EMBEDDINGS": "0"}
    began = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed with exit code {child.returncode}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def best(label: str, args: list[str], runs: int) -> Run:
    results = [run_child(args) for _ in range(runs)]
    top = min(results, key=lambda r: r.wall)
    print(
        f"{label}: best wall {top.wall:.2f} s, CPU {min(r.cpu for r in results):.2f} s "
        f"(walls {', '.join(f'{r.wall:.2f}' for r in results)}; "
        f"CPUs {', '.join(f'{r.cpu:.2f}' for r in results)}), peak RSS {top.peak_mb:.0f} MB"
    )
    return top


def ensure_store(work: Path, papers: int, server: str | None) -> tuple[str, Path]:
    """The synthetic store of ``bench/relevance_speed.py`` (same path, reused; or a database
    on ``server``) and a config."""
    db = work / "data" / f"speed-{papers}.sqlite3"
    url = f"sqlite:///{db}"
    fresh = not db.exists()
    if server is not None:
        url = sa.make_url(server).set(database=f"bench_speed_{papers}").render_as_string(False)
        fresh = not database_exists(url)
        if fresh:
            server_database(server, database_name(url))
    store = SqlStore.open(url)
    if fresh:
        ingest_paths(store, (), files=list_drop_files((REPO / "seeds",)), now=NOW)
        samples = store.load_papers()
        took = fill(store, samples, papers - len(samples), start=0, when=NOW)
        print(f"generated {papers} papers in {took:.1f} s (one-off)")
    store.close()
    profile = profiles()[0]
    config = work / "rank-bench.yaml"
    work.mkdir(parents=True, exist_ok=True)
    spec = {"description": profile.description, "keywords": list(profile.keywords)}
    config.write_text(
        yaml.safe_dump({"database_url": url, "profiles": [{"name": "p", **spec}]}), "utf-8"
    )
    return url, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-speed"))
    parser.add_argument("--build", action="store_true", help="also time a fresh index build")
    parser.add_argument("--ingest", action="store_true", help="also time a bulk ingest")
    parser.add_argument(
        "--ingest-into", type=int, default=0, metavar="N", help="also time N papers added"
    )
    parser.add_argument(
        "--database-url", help="a PostgreSQL database: the store goes on its server"
    )
    opts = parser.parse_args()
    work: Path = opts.workdir
    server = server_url(opts.database_url, cache_home=work / "cache")
    url, config = ensure_store(work, opts.papers, server)
    exe = str(Path(sys.executable).parent / "digestbot")
    base = [exe, "--config", str(config)]
    run_child([*base, "rank", "--profile", "p", "--limit", "1"])  # the index brought up to date
    best("rank --profile p --json", [*base, "rank", "--profile", "p", "--json"], opts.runs)
    best("rank --profile p --limit 10", [*base, "rank", "--profile", "p", "--limit", "10"], 3)

    if opts.build:
        store = SqlStore.open(url)
        index_dir = default_index_dir(store)
        store.close()
        assert index_dir is not None
        target = work / "rebuilt.index"
        code = (
            "import sys; from pathlib import Path; from digestbot.store import SqlStore; "
            "from digestbot.ranking.persist import sync_index; "
            f"print(sync_index(SqlStore.open({url!r}), Path({str(target)!r})).n_live)"
        )
        results = []
        for _ in range(opts.runs):
            shutil.rmtree(target, ignore_errors=True)
            results.append(run_child([sys.executable, "-c", code]))
        shutil.rmtree(target, ignore_errors=True)
        top = min(results, key=lambda r: r.wall)
        print(
            f"index build from scratch ({opts.papers} papers): best wall {top.wall:.1f} s, "
            f"CPU {min(r.cpu for r in results):.1f} s "
            f"(walls {', '.join(f'{r.wall:.1f}' for r in results)}; "
            f"CPUs {', '.join(f'{r.cpu:.1f}' for r in results)}), peak RSS {top.peak_mb:.0f} MB"
        )

    if opts.ingest_into:
        more = work / f"drops-more-{opts.ingest_into}"
        if not more.exists():
            write_drops(more, papers=opts.ingest_into, per_file=1000, seed=11)
        store = SqlStore.open(url)
        with store.transaction() as conn:  # the generated store's search index catches up
            sync_search_index(conn)  # once, so the runs time the new papers alone
        store.close()
        target = work / "ingest-into"
        more_config = work / "ingest-into.yaml"
        results = []
        for _ in range(opts.runs):
            copy_url = copy_store(url, target, name="bench_ingest_into")
            more_config.write_text(yaml.safe_dump({"database_url": copy_url}), "utf-8")
            results.append(run_child([exe, "--config", str(more_config), "ingest", str(more)]))
        shutil.rmtree(target, ignore_errors=True)
        top = min(results, key=lambda r: r.wall)
        print(
            f"digestbot ingest of {opts.ingest_into} papers into {opts.papers}: "
            f"best wall {top.wall:.2f} s, CPU {min(r.cpu for r in results):.2f} s "
            f"(walls {', '.join(f'{r.wall:.2f}' for r in results)}; "
            f"CPUs {', '.join(f'{r.cpu:.2f}' for r in results)}), peak RSS {top.peak_mb:.0f} MB"
        )

    if opts.ingest:
        drops = work / f"drops-{opts.papers}"
        if not drops.exists():
            write_drops(drops, papers=opts.papers, per_file=1000)
        target = work / "ingest"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        ingest_config = target / "config.yaml"
        db_url = f"sqlite:///{target / 'digestbot.sqlite3'}"
        if server is not None:
            db_url = server_database(server, "bench_ingest_cli")
        ingest_config.write_text(yaml.safe_dump({"database_url": db_url}), "utf-8")
        top = run_child([exe, "--config", str(ingest_config), "ingest", str(drops)])
        print(
            f"digestbot ingest of {opts.papers} papers (store + index): wall {top.wall:.1f} s, "
            f"CPU {top.cpu:.1f} s, peak RSS {top.peak_mb:.0f} MB"
        )


if __name__ == "__main__":
    main()
