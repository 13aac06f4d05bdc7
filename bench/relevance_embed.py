"""Embedding throughput and proof that re-ranking an unchanged store embeds nothing.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_embed.py --model PATH_OR_NAME [--papers 256]

Needs the semantic extra. Uses a fresh SQLite store holding the sample drops
(repeated with new titles to reach --papers).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from digestbot.config import Profile, RankingSettings
from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.semantic import Embedder, embed_missing, paper_text
from digestbot.store import SqlStore
from digestbot.store.embeddings import count_missing_embeddings

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--papers", type=int, default=256)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{tmp}/bench.sqlite3")
        ingest_paths(store, (), files=list_drop_files((REPO / "seeds",)), now=NOW)
        samples = store.load_papers()
        extra = [
            Paper(title=f"{p.title} (copy {i})", abstract=p.abstract)
            for i in range(opts.papers // len(samples) + 1)
            for p in samples
        ][: max(opts.papers - len(samples), 0)]
        with store.transaction() as conn:
            store.upsert_papers(conn, extra, now=NOW)
        texts = [paper_text(p.title, p.abstract) for p in store.load_papers()][: opts.papers]
        titles = [p.title for p in store.load_papers()][: opts.papers]
        for label, tokens, batch in (
            ("title + abstract, 256 tokens", 256, texts),
            ("title + abstract, 128 tokens", 128, texts),
            ("titles only", 256, titles),
        ):
            embedder = Embedder(opts.model, max_tokens=tokens, batch_size=64)
            embedder.embed(batch[:8])  # load the model outside the timing
            began = time.perf_counter()
            embedder.embed(batch)
            took = time.perf_counter() - began
            print(f"{label:<30} {len(batch) / took:7.1f} papers/s ({len(batch)} papers)")

        settings = RankingSettings(embedding_model=opts.model, embedding_inline_limit=10**6)
        embedder = Embedder(opts.model, max_tokens=256, batch_size=64)
        began = time.perf_counter()
        done = embed_missing(store, embedder, now=NOW)
        print(f"store backfill: {done} papers in {time.perf_counter() - began:.1f} s")
        profile = Profile(name="p", keywords=["linear attention"])
        rank_profile(store, profile, now=NOW, settings=settings)
        missing = count_missing_embeddings(store, model=opts.model)
        began = time.perf_counter()
        rank_profile(store, profile, now=NOW, settings=settings)
        print(
            f"re-rank of an unchanged store: {missing} papers to embed, "
            f"{count_missing_embeddings(store, model=opts.model)} after; "
            f"{time.perf_counter() - began:.2f} s"
        )
        store.close()


if __name__ == "__main__":
    main()
