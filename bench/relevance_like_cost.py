"""Cost of like-only profiles on a synthetic 100,000-paper index (in memory, no store).

Times, best of 3 (wall and CPU per profile): the liked papers' phrases
(``liked_terms.liked_phrases``), the whole lexical scoring of a like-only profile
(``scorer.score_profile``: liked papers' term vectors, their phrases, expansion), and
the semantic liked part (``semantic._liked_part``: centroid cosine plus label
spreading) against the centroid cosine alone, on random unit vectors of MiniLM's size.

    .venv/bin/python bench/relevance_like_cost.py [--papers 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_speed import NOW, REPO, synthetic
from bench.synth import sample_papers
from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.ranking.lexical import Document, LexicalIndex
from digestbot.ranking.liked_terms import liked_phrases
from digestbot.ranking.scorer import score_profile
from digestbot.ranking.semantic import _calibrated, _liked_part, liked_centroid


def best_of(fn: Callable[[], object], runs: int = 3) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of ``runs`` calls."""
    best = (float("inf"), float("inf"))
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    opts = parser.parse_args()
    samples = [Paper(title=t, abstract=a) for t, a in sample_papers(REPO / "seeds")]
    papers = samples + synthetic(samples, opts.papers, seed=1, start=0)
    began = time.perf_counter()
    index = LexicalIndex.build(
        [Document(pk=i, title=p.title, abstract=p.abstract) for i, p in enumerate(papers)]
    )
    print(f"index of {len(papers)} papers built in {time.perf_counter() - began:.1f} s")
    row_of_title = {p.title: i for i, p in enumerate(samples)}
    specs = [
        spec
        for name in ("devset", "devset2")
        for spec in yaml.safe_load((REPO / "bench" / "relevance" / f"{name}.yaml").read_text())[
            "profiles"
        ]
    ]
    likes = [[row_of_title[t] for t in spec["like"] if t in row_of_title] for spec in specs]

    def texts(rows: Sequence[int]) -> list[tuple[str, str]]:
        return [(papers[r].title, papers[r].abstract) for r in rows]

    def phrases() -> None:
        for rows in likes:
            liked_phrases(index, texts(rows))

    def lexical() -> None:
        for spec, rows in zip(specs, likes, strict=True):
            profile = Profile(name=spec["name"], like=spec["like"])
            score_profile(
                index, profile, texts=texts, liked_rows=rows, settings=RankingSettings(), now=NOW
            )

    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(papers), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    have = np.arange(len(papers))

    def skip_of(rows: list[int]) -> np.ndarray:
        skip = np.zeros(len(papers), dtype=bool)
        skip[rows] = True
        return skip

    def centroid_only() -> None:
        for rows in likes:
            centre = liked_centroid(vectors, rows)
            assert centre is not None
            _calibrated(vectors @ centre, have=have, skip=skip_of(rows))

    def with_graph() -> None:
        for rows in likes:
            _liked_part(vectors, rows, have=have, skip=skip_of(rows))

    n = len(likes)
    for label, fn in (
        ("liked papers' phrases", phrases),
        ("lexical score_profile, like-only", lexical),
        ("semantic liked part: centroid cosine only", centroid_only),
        ("semantic liked part: + label spreading", with_graph),
    ):
        wall, cpu = best_of(fn)
        print(f"{label:<45} {1000 * wall / n:7.1f} ms wall {1000 * cpu / n:7.1f} ms CPU / profile")


if __name__ == "__main__":
    main()
