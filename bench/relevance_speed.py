"""Speed of the lexical ranker on a synthetic 100,000-paper store built from seeds/.

Prints: building the index once (a one-off), scoring 100 profiles against the
index (wall and CPU, best of 3), syncing 1,000 newly ingested papers into it, and the
wall and CPU time of ``digestbot rank --profile NAME --json`` (start-up included) on
the big store. ``bench/rank.py`` times ``rank`` alone, best of N.

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python bench/relevance_speed.py [--papers 100000]
        [--workdir /tmp/digestbot-speed]

The store is generated once into --workdir and reused on later runs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench  # noqa: F401  (this checkout's code, in children too: bench/__init__.py)
from digestbot.config import Profile, RankingSettings
from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.models import Paper
from digestbot.ranking.lexical import LexicalIndex
from digestbot.ranking.persist import default_index_dir, sync_index
from digestbot.ranking.service import score_store
from digestbot.store import SqlStore

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def synthetic(samples: list[Paper], n: int, *, seed: int, start: int) -> list[Paper]:
    """Papers whose titles and abstracts recombine the samples' sentences and words."""
    rng = random.Random(seed)
    sentences = [s.strip() for p in samples for s in p.abstract.split(". ") if s.strip()]
    title_words = [w for p in samples for w in p.title.split()]
    out = []
    for i in range(n):
        title = " ".join(rng.sample(title_words, rng.randint(5, 11)))
        abstract = ". ".join(rng.sample(sentences, rng.randint(5, 9))) + "."
        out.append(
            Paper(
                title=f"{title} ({start + i})",
                abstract=abstract,
                upvotes=rng.randint(0, 60),
                published=date(2024, 1, 1) + timedelta(days=rng.randint(0, 1000)),
            )
        )
    return out


def fill(store: SqlStore, samples: list[Paper], n: int, *, start: int, when: datetime) -> float:
    began = time.perf_counter()
    batch = 5000
    for offset in range(0, n, batch):
        papers = synthetic(
            samples, min(batch, n - offset), seed=start + offset, start=start + offset
        )
        with store.transaction() as conn:
            store.upsert_papers(conn, papers, now=when)
    return time.perf_counter() - began


def profiles() -> list[Profile]:
    dev = yaml.safe_load((REPO / "bench" / "relevance" / "devset.yaml").read_text("utf-8"))
    out: list[Profile] = []
    for round_ in range(10):
        for spec in dev["profiles"]:
            keywords = spec["keywords"][round_ % 3 :] or spec["keywords"]
            desc = spec["description"] if round_ % 2 == 0 else ""
            out.append(
                Profile(name=f"{spec['name']}-{round_}", description=desc, keywords=keywords)
            )
    return out[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-speed"))
    opts = parser.parse_args()
    work = opts.workdir
    db = work / "data" / f"speed-{opts.papers}.sqlite3"
    url = f"sqlite:///{db}"
    fresh = not db.exists()
    store = SqlStore.open(url)
    if fresh:
        ingest_paths(store, (), files=list_drop_files((REPO / "seeds",)), now=NOW)
        samples = store.load_papers()
        took = fill(store, samples, opts.papers - len(samples), start=0, when=NOW)
        print(f"generated {opts.papers} papers in {took:.1f} s (one-off)")
    samples = store.load_papers(limit=186)
    index_dir = default_index_dir(store)
    assert index_dir is not None
    if fresh and index_dir.exists():
        shutil.rmtree(index_dir)
    began = time.perf_counter()
    index = sync_index(store, index_dir)
    print(f"index sync at start: {time.perf_counter() - began:.2f} s for {index.n_live} papers")

    began = time.perf_counter()
    index = sync_index(store, index_dir)
    print(f"index sync, nothing new:              {time.perf_counter() - began:.3f} s")

    settings = RankingSettings()
    chosen = profiles()
    for label, shared in (("cold term cache per profile", False), ("one index kept", True)):
        runs = []
        for _ in range(3):  # best of 3: the machine is shared
            began, cpu = time.perf_counter(), time.process_time()
            for profile in chosen:
                target = index if shared else LexicalIndex(index.segments)
                score_store(store, target, profile, now=NOW, settings=settings)
            runs.append((time.perf_counter() - began, time.process_time() - cpu))
        took, cpu_took = min(runs)
        print(
            f"lexical scoring, {len(chosen)} profiles x {index.n_live} papers ({label}): "
            f"{took:.2f} s wall, {cpu_took:.2f} s CPU, best of 3 "
            f"({1000 * took / len(chosen):.0f} ms per profile)"
        )

    stamp = NOW + timedelta(days=1, seconds=time.time() % 100_000)
    upsert = fill(store, samples, 1000, start=10_000_000 + int(time.time()), when=stamp)
    began = time.perf_counter()
    index = sync_index(store, index_dir)
    took = time.perf_counter() - began
    print(f"ingest 1,000 new papers: store upsert {upsert:.2f} s, index update {took:.2f} s")
    print(f"  (index now {index.n_live} papers in {len(index.segments)} segments)")

    config = work / "speed.yaml"
    config.write_text(
        yaml.safe_dump({"database_url": url, "profiles": [{"name": "p", **_spec(chosen[0])}]}),
        "utf-8",
    )
    exe = str(Path(sys.executable).parent / "digestbot")
    rank_args = [exe, "--config", str(config), "rank", "--profile", "p", "--json"]
    runs = [_timed(rank_args) for _ in range(3)]
    print(
        f"`digestbot rank --profile p --json` on {index.n_live} papers, wall (CPU): "
        + ", ".join(f"{w:.2f} s ({c:.2f} s)" for w, c in runs)
    )
    for args in (["rank", "--profile", "p", "--limit", "10"], ["digest", "--profile", "p"]):
        began = time.perf_counter()
        subprocess.run([exe, "--config", str(config), *args], check=True, stdout=subprocess.DEVNULL)
        print(f"`digestbot {' '.join(args)}` wall: {time.perf_counter() - began:.2f} s")
    store.close()


def _timed(args: list[str]) -> tuple[float, float]:
    """A child's wall time and CPU time (user + sys)."""
    began = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{args} failed")
    return time.perf_counter() - began, usage.ru_utime + usage.ru_stime


def _spec(profile: Profile) -> dict[str, object]:
    return {"description": profile.description, "keywords": list(profile.keywords)}


if __name__ == "__main__":
    main()
