"""Speed of the scheduled digest itself (``send_due``) on a 100,000-paper store.

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python -m bench.digest_send [--papers 100000]
        [--runs 3] [--workdir /tmp/digestbot-speed]

On a copy of the store ``bench/rank.py`` uses (made if missing), one profile with a file
destination, in this process, best of ``--runs`` (each on a fresh copy):

- **first digest**: a destination that never had one (every paper is a candidate);
- **next day**: the day after, with 1,000 new papers (the daily case).

Before this release ``send_due`` ranked an in-memory index of every paper, built afresh
per profile (and without the votes, the stored embeddings or ``ranking:``); it now ranks
the candidates on the persisted index, as ``digestbot rank`` does.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.rank import ensure_store  # noqa: E402
from bench.relevance_speed import NOW, fill, profiles  # noqa: E402
from digestbot.config import parse_settings  # noqa: E402
from digestbot.delivery.service import send_due  # noqa: E402
from digestbot.ranking.persist import default_index_dir, sync_index  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402


def timed_sends(url: str, work: Path, run: int) -> tuple[float, float, int, int]:
    """(first digest s, next-day digest s, papers in each) on a fresh copy of the store."""
    source = Path(url.removeprefix("sqlite:///"))
    target = work / "send" / f"run{run}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    db = target / source.name
    shutil.copy2(source, db)
    index = source.with_name(source.name + ".index")
    if index.is_dir():
        shutil.copytree(index, db.with_name(db.name + ".index"))
    profile = profiles()[0]
    settings = parse_settings(
        {
            "database_url": f"sqlite:///{db}",
            "profiles": [
                {
                    "name": "p",
                    "description": profile.description,
                    "keywords": list(profile.keywords),
                    "deliver": [{"file": {"path": str(target / "out")}}],
                }
            ],
        },
        env={},
    )
    store = SqlStore.open(settings.database_url)
    try:
        began = time.perf_counter()
        first = send_due(settings, store, now=NOW)
        first_s = time.perf_counter() - began
        samples = store.load_papers(limit=200)
        fill(store, samples, 1000, start=10_000_000 + run * 1000, when=NOW + timedelta(hours=12))
        began = time.perf_counter()
        second = send_due(settings, store, now=NOW + timedelta(days=1))
        second_s = time.perf_counter() - began
    finally:
        store.close()
    assert first.ok and second.ok, (first.outcomes, second.outcomes)
    return first_s, second_s, first.outcomes[0].papers, second.outcomes[0].papers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-speed"))
    opts = parser.parse_args()
    url, _ = ensure_store(opts.workdir, opts.papers, None)
    store = SqlStore.open(url)  # the index brought up to date once (as bench/rank.py does)
    index_dir = default_index_dir(store)
    assert index_dir is not None
    sync_index(store, index_dir)
    store.close()
    results = [timed_sends(url, opts.workdir, run) for run in range(opts.runs)]
    firsts = [r[0] for r in results]
    seconds = [r[1] for r in results]
    print(
        f"first digest ({opts.papers:,} candidates): best {min(firsts):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in firsts)}), {results[0][2]} papers"
    )
    print(
        f"next day, 1,000 new papers: best {min(seconds):.2f} s "
        f"(runs {', '.join(f'{t:.2f}' for t in seconds)}), {results[0][3]} papers"
    )


if __name__ == "__main__":
    main()
