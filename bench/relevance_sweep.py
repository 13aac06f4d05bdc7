"""In-process lexical sweeps on the development sets: one store, many variants in seconds.

Ingests seeds/ once (as ``relevance_eval.py`` does), then for each variant rebuilds the
in-memory index and ranks every dev profile (full, keywords, like) through
``score_store`` and the listing's ordering, so the figures match
``relevance_eval.py`` (lexical run) for the unchanged code. A variant is a set of
module attributes to override, e.g.::

    .venv/bin/python bench/relevance_sweep.py [--bm25] 'lexical.K1=1.5' 'lexical.TITLE_WEIGHT=3'

Each argument is one variant (space-separated assignments inside it); none: the
current code only. Values are Python literals. ``--bm25`` also prints plain Okapi BM25
(k1 1.5, b 0.75, one field, the profile's description and keywords as a bag of words,
with and without Snowball stems): the kind of baseline issue #3's anchors quote.
``--held-out`` adds the held-out sets (devset3.yaml, devset4.yaml) to the report, then
the mean over all sets and over the 16 held-out profiles: to check a result, never to
choose a variant.
"""

from __future__ import annotations

import ast
import importlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import (
    DEVSET,
    DEVSET2,
    HELD_OUT,
    NOW,
    average_precision,
    judged,
    ndcg_at,
    profile_config,
)
from digestbot.config import Profile, RankingSettings
from digestbot.ranking import lexical, text
from digestbot.ranking.explain import order_best_first
from digestbot.ranking.service import open_index, score_store
from digestbot.ranking.stopwords import STOP_WORDS
from digestbot.store import SqlStore
from digestbot.store.ranking import load_texts

MODES = ("full", "keywords", "like")
HELD_STEMS = {p.stem for p in HELD_OUT}


def clear_caches() -> None:
    text._TOKEN_CACHE.clear()
    text._COLUMN_CACHE.clear()
    text._ACRONYM_KEYS.clear()
    text.stem.cache_clear()
    text._VOCAB = text._Vocabulary()
    lexical._RECENT.clear()


def evaluate(
    store: SqlStore, sets: list[tuple[str, list[dict[str, Any]]]]
) -> dict[tuple[str, str], Any]:
    clear_caches()
    settings = RankingSettings(embedding_model=None)
    now = datetime.fromisoformat(NOW.replace("Z", "+00:00")).astimezone(UTC)
    index = open_index(store, None)
    ids, _ = index.labels()
    live = np.flatnonzero(index.live)
    out: dict[tuple[str, str], Any] = {}
    for set_name, specs in sets:
        for mode in MODES:
            pairs = []
            for spec in specs:
                profile = Profile(**profile_config(spec, mode))
                scores, _, liked_rows = score_store(
                    store, index, profile, now=now, settings=settings
                )
                order = order_best_first(
                    scores.total[live],
                    upvotes=index.upvotes[live],
                    ids=[ids[r] for r in live.tolist()],
                )
                ranked = [ids[r] for r in live[order].tolist()]
                pairs.append(judged(spec, mode, ranked, [ids[r] for r in liked_rows]))
            out[(set_name, mode)] = pairs
    return out


def plain_bm25(
    store: SqlStore, sets: list[tuple[str, list[dict[str, Any]]]], *, stemmed: bool
) -> dict[Any, Any]:
    """Okapi BM25 over title + abstract as one field; query: description + keywords."""
    index = open_index(store, None)
    ids, _ = index.labels()
    found = load_texts(store, [int(pk) for pk in index.pks])

    def tokens(value: str) -> list[str]:
        kept = [w for w in re.findall(r"[a-z0-9]+", value.lower()) if w not in STOP_WORDS]
        return [text.stem(w) for w in kept] if stemmed else kept

    docs = [tokens(" ".join(found[int(pk)])) for pk in index.pks]
    avg = sum(map(len, docs)) / len(docs)
    df: dict[str, int] = {}
    tfs: list[dict[str, int]] = []
    for doc in docs:
        counts: dict[str, int] = {}
        for w in doc:
            counts[w] = counts.get(w, 0) + 1
        tfs.append(counts)
        for w in counts:
            df[w] = df.get(w, 0) + 1
    out: dict[Any, Any] = {}
    for set_name, specs in sets:
        for mode in ("full", "keywords"):
            pairs = []
            for spec in specs:
                cfg = profile_config(spec, mode)
                query = tokens(cfg.get("description", "") + " " + " ".join(cfg["keywords"]))
                scores = np.zeros(len(docs))
                for w in query:
                    if w not in df:
                        continue
                    idf = math.log(1 + (len(docs) - df[w] + 0.5) / (df[w] + 0.5))
                    for i, counts in enumerate(tfs):
                        tf = counts.get(w, 0)
                        if tf:
                            norm = 1.5 * (0.25 + 0.75 * len(docs[i]) / avg)
                            scores[i] += idf * tf * 2.5 / (tf + norm)
                ranked = [ids[i] for i in np.argsort(-scores, kind="stable")]
                grades = {item["id"]: int(item["grade"]) for item in spec["labels"]}
                pairs.append((ndcg_at(ranked, grades), average_precision(ranked, grades)))
            out[(set_name, mode)] = pairs
    return out


def apply(assignments: str) -> list[tuple[Any, str, Any]]:
    undo = []
    for item in assignments.split():
        target, value = item.split("=", 1)
        module_name, attr = target.rsplit(".", 1)
        module = importlib.import_module(f"digestbot.ranking.{module_name}")
        undo.append((module, attr, getattr(module, attr)))
        setattr(module, attr, ast.literal_eval(value))
    return undo


def _mean_pair(pairs: list[tuple[float, float]]) -> str:
    return f"{np.mean([p[0] for p in pairs]):.3f}/{np.mean([p[1] for p in pairs]):.3f}"


def report(label: str, result: dict[tuple[str, str], Any], sets: list[str]) -> None:
    cells = []
    for mode in MODES:
        if (sets[0], mode) not in result:
            continue
        parts = []
        every = []
        for s in sets:
            pairs = result[(s, mode)]
            every += pairs
            parts.append(
                f"{np.mean([p[0] for p in pairs]):.3f}/{np.mean([p[1] for p in pairs]):.3f}"
            )
        parts.append(f"{np.mean([p[0] for p in every]):.3f}/{np.mean([p[1] for p in every]):.3f}")
        held = [p for s in sets if s in HELD_STEMS for p in result[(s, mode)]]
        if len([s for s in sets if s in HELD_STEMS]) > 1:
            parts.append(_mean_pair(held))
        cells.append(f"{mode[:4]} " + " ".join(parts))
    print(f"{label[:40]:<40} | " + " | ".join(cells), flush=True)


def setup(work: Path) -> SqlStore:
    shutil.copytree(Path(__file__).resolve().parent.parent / "seeds", work / "seeds")
    config = {
        "database_url": f"sqlite:///{work}/bench.sqlite3",
        "drops": {"path": str(work / "seeds")},
        "ranking": {"embedding_model": None},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config), "utf-8")
    exe = Path(sys.executable).parent / "digestbot"
    subprocess.run(
        [str(exe), "--config", str(work / "config.yaml"), "--now", NOW, "ingest", "--json"],
        check=True,
        capture_output=True,
    )
    return SqlStore.open(f"sqlite:///{work}/bench.sqlite3")


def main() -> None:
    os.environ.setdefault("DIGESTBOT_AUTO_EMBEDDINGS", "0")
    paths = (DEVSET, DEVSET2, *HELD_OUT) if "--held-out" in sys.argv else (DEVSET, DEVSET2)
    sets = [(p.stem, yaml.safe_load(p.read_text("utf-8"))["profiles"]) for p in paths]
    names = [s for s, _ in sets]
    held = " / held-out" if "--held-out" in sys.argv else ""
    print(f"{'variant':<40} | mode  {' / '.join(names)} / all{held}  (nDCG@10/MAP)")
    with tempfile.TemporaryDirectory() as tmp:
        store = setup(Path(tmp))
        report("current", evaluate(store, sets), names)
        if "--bm25" in sys.argv:
            report("plain BM25", plain_bm25(store, sets, stemmed=False), names)
            report("plain BM25, stemmed", plain_bm25(store, sets, stemmed=True), names)
        for variant in [a for a in sys.argv[1:] if a not in ("--bm25", "--held-out")]:
            undo = apply(variant)
            try:
                report(variant, evaluate(store, sets), names)
            finally:
                for module, attr, old in reversed(undo):
                    setattr(module, attr, old)
        store.close()


if __name__ == "__main__":
    main()
