"""Speed of the scheduled digest itself (``send_due``) on a 100,000-paper store.

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python -m bench.digest_send [--papers 100000]
        [--runs 3] [--workdir /tmp/digestbot-speed]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:55439/digestbot_test]

On a copy of the store ``bench/rank.py`` uses (made if missing; copied with its ranking
index by ``bench.databases.copy_store``, on PostgreSQL as ``bench/rank.py --ingest-into``
does), one profile with a file destination, in this process, best of ``--runs`` (each on
a fresh copy), wall and CPU time (user + sys):

- **first digest**: a destination that never had one (every paper is a candidate);
- **next day**: the day after, with 1,000 new papers (the daily case);
- **beside a new destination**: the day after that, 1,000 new papers again, and a second
  destination added: every paper is a candidate again and the first destination's pool
  (its 1,000 new papers) lies deep in their ranking (light papers, without a breakdown).

Before this release ``send_due`` ranked an in-memory index of every paper, built afresh
per profile (and without the votes, the stored embeddings or ``ranking:``); it now ranks
the candidates on the persisted index, as ``digestbot rank`` does.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.databases import copy_store, server_url  # noqa: E402
from bench.rank import ensure_store  # noqa: E402
from bench.relevance_speed import NOW, fill, profiles  # noqa: E402
from digestbot.config import Settings, parse_settings  # noqa: E402
from digestbot.delivery.service import send_due  # noqa: E402
from digestbot.ranking.persist import default_index_dir, sync_index  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402

CASES = ("first digest", "next day", "beside a new destination")


def _settings(url: str, outs: list[Path]) -> Settings:
    profile = profiles()[0]
    return parse_settings(
        {
            "database_url": url,
            "profiles": [
                {
                    "name": "p",
                    "description": profile.description,
                    "keywords": list(profile.keywords),
                    "deliver": [{"file": {"path": str(out)}} for out in outs],
                }
            ],
        },
        env={},
    )


def timed_sends(url: str, work: Path, run: int) -> list[tuple[float, float, list[int]]]:
    """Per case (``CASES``): wall s, CPU s and the papers of each digest, on a fresh copy."""
    target = work / "send" / f"run{run}"
    copy_url = copy_store(url, target, name="bench_digest_send")
    one = _settings(copy_url, [target / "out"])
    two = _settings(copy_url, [target / "out", target / "out2"])
    store = SqlStore.open(copy_url)
    out: list[tuple[float, float, list[int]]] = []
    try:
        samples = store.load_papers(limit=200)
        for day, settings in enumerate((one, one, two)):
            if day:
                start = day * 10_000_000 + run * 1000
                fill(store, samples, 1000, start=start, when=NOW + timedelta(days=day - 0.5))
            wall, cpu = time.perf_counter(), time.process_time()  # CPU: this process's
            report = send_due(settings, store, now=NOW + timedelta(days=day))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert report.ok, report.outcomes
            out.append((wall, cpu, [o.papers for o in report.outcomes]))
    finally:
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-speed"))
    parser.add_argument(
        "--database-url", help="a PostgreSQL database: the store goes on its server"
    )
    opts = parser.parse_args()
    work: Path = opts.workdir
    server = server_url(opts.database_url, cache_home=work / "cache")
    url, _ = ensure_store(work, opts.papers, server)
    store = SqlStore.open(url)  # the index brought up to date once (as bench/rank.py does)
    index_dir = default_index_dir(store)
    assert index_dir is not None
    sync_index(store, index_dir)
    store.close()
    results = [timed_sends(url, work, run) for run in range(opts.runs)]
    for k, case in enumerate(CASES):
        walls = [r[k][0] for r in results]
        cpus = [r[k][1] for r in results]
        print(
            f"{case} ({opts.papers:,} papers): best wall {min(walls):.2f} s, "
            f"CPU {min(cpus):.2f} s (walls {', '.join(f'{t:.2f}' for t in walls)}; "
            f"CPUs {', '.join(f'{t:.2f}' for t in cpus)}), papers {results[0][k][2]}"
        )


if __name__ == "__main__":
    main()
