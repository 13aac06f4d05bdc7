"""A fusion learned from the labels, against the hand-set one (issue #3, measurement only).

The in-process ``relevance_fusion.Harness`` (seeds ingested, every paper and title embedded
once) gives, per (set, profile, mode), ``scorer.score_profile``'s parts; this script adds
finer evidence the scorer computes or could compute without a model of its own (the
keyword phrases apart from their words found apart and from the description, the share of
keywords matched, keywords in the title, each semantic cosine before it is averaged, the
liked papers' nearest and farthest cosine, label spreading, the priors), standardised within
the profile, and fits one linear (or boosted) model per mode:

- two folds across sets: trained on devset, scored on devset2, and the reverse;
- leave one profile out over the 20 tuning profiles;
- devset3 (held out) only for the candidate chosen by the leave-one-out figure, trained on
  all 20 (never used to choose features, family or regularisation).

Each cell is printed beside main's hand-set fusion on the same profiles (main's figures
come from ``Harness.run``, and the script checks that ranking by main's total through its
own path gives them), with paired per-profile differences (mean ± standard error, up/down)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_ltr.py [--mode full] [--coefficients]

``--ceilings``: only the in-sample fits (trained and scored on the same 20) of the least
regularised models, as a ceiling of what the features could give a family at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import DEVSET, DEVSET2, DEVSET3, average_precision, ndcg_at
from bench.relevance_fusion import MODES, Harness, mean
from digestbot.ranking import semantic as sem
from digestbot.ranking.explain import order_best_first
from digestbot.ranking.liked_graph import GRAPH_CANDIDATES, graph_rows, label_spreading
from digestbot.ranking.scorer import ProfileScores
from digestbot.ranking.text import column, terms, words

Key = tuple[str, str, str]  # (set, profile, mode)
TUNING = (DEVSET.stem, DEVSET2.stem)

# the parts main sums (max-scaled), then the finer evidence
PARTS = ["total", "profile", "like", "semantic", "expansion"]
FINER = [
    "kw_phrase",  # BM25 of the keywords' phrasings (the liked phrases' for a like-only profile)
    "kw_words",  # BM25 of a multi-word keyword's words found apart (back-off)
    "description",  # BM25 of the description's words and pairs
    "kw_cover",  # share of keywords matched (phrase or words)
    "phrase_cover",  # share of keywords whose phrase (or acronym) matched
    "desc_cover",  # weight share of the description's features matched
    "title_hits",  # share of keywords whose phrasing stands whole in the title
    "cos_desc",  # calibrated cosine to the description (title-mixed, as the scorer's)
    "cos_kwlist",  # calibrated cosine to the keyword list
    "cos_kw_max",  # best calibrated per-keyword cosine
    "cos_kw_top2",  # mean of the best two
    "cos_title",  # calibrated cosine of the title vector alone to the profile's texts
    "cos_centroid",  # calibrated cosine to the liked papers' centroid
    "cos_liked_max",  # nearest liked paper's calibrated cosine
    "cos_liked_min",  # farthest liked paper's calibrated cosine
    "spread",  # label spreading from the liked papers
    "upvotes",
    "recency",
]
ALL = PARTS + FINER


@dataclass
class Example:
    """One profile in one mode: its candidate papers' features, grades and tie-break keys."""

    key: Key
    x: np.ndarray  # papers x ALL, raw (each in [0, 1] after max-scaling)
    grades: np.ndarray
    ids: list[str]
    upvotes: np.ndarray
    labels: dict[str, int]  # the graded papers (liked ones removed in like mode)


def _max_scaled(values: np.ndarray) -> np.ndarray:
    values = np.nan_to_num(np.asarray(values, dtype=np.float64))
    top = float(values.max()) if len(values) else 0.0
    return values / top if top > 0 else np.zeros_like(values)


def _lexical_finer(
    scores: ProfileScores, pool: np.ndarray, titles: list[set[int]]
) -> dict[str, np.ndarray]:
    """The profile's BM25 evidence split by kind of feature, and shares of it matched."""
    raw = scores.raw[:, pool] if len(scores.features) else np.zeros((0, len(pool)))
    phrase_rows = [
        j for j, f in enumerate(scores.features) if f.kind != "description" and not f.unless
    ]
    word_rows = [j for j, f in enumerate(scores.features) if f.kind != "description" and f.unless]
    desc_rows = [j for j, f in enumerate(scores.features) if f.kind == "description"]
    out = {
        "kw_phrase": _max_scaled(raw[phrase_rows].sum(axis=0)),
        "kw_words": _max_scaled(raw[word_rows].sum(axis=0)),
        "description": _max_scaled(raw[desc_rows].sum(axis=0)),
    }
    # a keyword: its phrase feature and its words' back-off features (which carry the
    # phrase's phrasings as ``unless``)
    groups: dict[Any, list[int]] = {}
    for j in phrase_rows:
        groups.setdefault(scores.features[j].alternatives, []).append(j)
    for j in word_rows:
        groups.setdefault(scores.features[j].unless, []).append(j)
    n_groups = max(len(groups), 1)
    hit = raw > 0
    covered = np.zeros(len(pool))
    for js in groups.values():
        covered += hit[js].any(axis=0)
    out["kw_cover"] = covered / n_groups
    out["phrase_cover"] = (
        hit[phrase_rows].sum(axis=0) / n_groups if phrase_rows else np.zeros(len(pool))
    )
    weights = np.asarray([scores.features[j].weight for j in desc_rows])
    out["desc_cover"] = (
        (hit[desc_rows] * weights[:, None]).sum(axis=0) / weights.sum()
        if desc_rows
        else np.zeros(len(pool))
    )
    phrasings = [
        [[column(t) for t in alt] for alt in scores.features[j].alternatives if alt]
        for j in phrase_rows
    ]
    title_hits = np.zeros(len(pool))
    for i, held in enumerate(titles):
        title_hits[i] = sum(any(all(c in held for c in alt) for alt in alts) for alts in phrasings)
    out["title_hits"] = title_hits / n_groups
    return out


def _semantic_finer(
    harness: Harness, key: Key, liked_rows: list[int], pool: np.ndarray
) -> dict[str, np.ndarray]:
    """Each semantic cosine before the scorer averages them, calibrated as it calibrates."""
    profile, _ = harness.profiles[key]
    ready, embed = harness.ready, harness.embedder
    vectors, has, titles = ready.vectors, ready.has, ready.titles
    have = np.flatnonzero(has)
    skip = np.zeros(len(vectors), dtype=bool)
    skip[liked_rows] = True
    out = {
        name: np.zeros(len(pool)) for name in FINER if name.startswith("cos_") or name == "spread"
    }

    def calibrated(values: np.ndarray) -> np.ndarray:
        return np.asarray(sem._calibrated(values, have=have, skip=skip)[pool])

    texts = []
    if profile.description.strip():
        query = embed.embed_query(profile.description.strip())
        texts.append(query)
        out["cos_desc"] = calibrated(sem._cosines(vectors, query, titles))
    keywords = list(profile.keywords)
    if keywords:
        joined = embed.embed_query(", ".join(keywords))
        texts.append(joined)
        out["cos_kwlist"] = calibrated(sem._cosines(vectors, joined, titles))
        each = np.stack([embed.embed_query(k) for k in keywords]).T
        per = sem._calibrated_columns(sem._cosines(vectors, each, titles), have=have, skip=skip)
        per = per[pool]
        out["cos_kw_max"] = per.max(axis=1)
        top = np.sort(per, axis=1)[:, -2:]
        out["cos_kw_top2"] = top.mean(axis=1)
    if texts and titles is not None:
        by_title = np.mean([titles.vectors @ q for q in texts], axis=0)
        out["cos_title"] = calibrated(np.where(titles.has, by_title, 0.0))
    liked = [r for r in liked_rows if has[r]]
    if liked:
        centre = sem.liked_centroid(vectors, liked)
        assert centre is not None
        cosine = np.asarray(vectors @ centre, dtype=np.float64)
        out["cos_centroid"] = calibrated(cosine)
        per = sem._calibrated_columns(vectors @ vectors[liked].T, have=have, skip=skip)[pool]
        out["cos_liked_max"] = per.max(axis=1)
        out["cos_liked_min"] = per.min(axis=1)
        rows, seeds = graph_rows(cosine, have, liked, limit=GRAPH_CANDIDATES)
        spread = np.zeros(len(vectors))
        spread[rows] = label_spreading(vectors[rows], seeds)
        out["spread"] = _max_scaled(spread[pool])
    return out


def examples(harness: Harness) -> tuple[dict[Key, Example], dict[Key, tuple[float, float]]]:
    """Every (set, profile, mode)'s features, and main's (nDCG@10, AP) through this path."""
    out: dict[Key, Example] = {}
    main: dict[Key, tuple[float, float]] = {}
    specs = {(s, spec["name"]): spec for s, specs in harness.sets for spec in specs}
    for key, (profile, liked_rows) in harness.profiles.items():
        set_name, name, mode = key
        scores = harness.scores(profile, liked_rows, harness.evidence(profile, liked_rows))
        pool = harness.live
        if mode == "like":
            pool = pool[~np.isin(pool, liked_rows)]
        ids = [harness.ids[r] for r in pool.tolist()]
        upvotes = harness.index.upvotes[pool]
        labels = {item["id"]: int(item["grade"]) for item in specs[(set_name, name)]["labels"]}
        for row in liked_rows if mode == "like" else []:
            labels.pop(harness.ids[row], None)
        # main's ranking through this path (checked against Harness.run below)
        ranked = [ids[i] for i in order_best_first(scores.total[pool], upvotes=upvotes, ids=ids)]
        main[key] = (ndcg_at(ranked, labels), average_precision(ranked, labels))
        titles = [
            {column(t) for t in terms(words(title))} for title, _ in harness.texts(pool.tolist())
        ]
        columns: dict[str, np.ndarray] = {"total": _max_scaled(scores.total[pool])}
        for part in ("profile", "like", "semantic", "expansion", "upvotes", "recency"):
            values = scores.parts.get(part)
            columns[part] = _max_scaled(values[pool]) if values is not None else np.zeros(len(pool))
        columns.update(_lexical_finer(scores, pool, titles))
        columns.update(_semantic_finer(harness, key, liked_rows, pool))
        x = np.column_stack([columns[name] for name in ALL])
        grades = np.asarray([labels.get(pid, 0) for pid in ids], dtype=np.int64)
        out[key] = Example(key, x, grades, ids, upvotes, labels)
    return out, main


# --- models ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    family: str  # pointwise | pairwise | ascent | boosted
    features: tuple[str, ...]
    # max: as exported (each divided by its best paper); z: z-scored within the profile;
    # anchored: as max, main's total x ANCHOR (its weight then costs the L2 penalty next to
    # nothing: the model learns corrections to main's order rather than a new order)
    scale: str
    c: float = 1.0

    @property
    def label(self) -> str:
        names = "parts" if self.features == tuple(PARTS) else f"{len(self.features)} feats"
        reg = f" C={self.c:g}" if self.family in ("pointwise", "pairwise") else ""
        return f"{self.family}{reg} {names} {self.scale}"


def design(example: Example, candidate: Candidate) -> np.ndarray:
    x = example.x[:, [ALL.index(f) for f in candidate.features]]
    if candidate.scale == "anchored" and "total" in candidate.features:
        x = x.copy()
        x[:, candidate.features.index("total")] *= ANCHOR
    if candidate.scale == "z":
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return x


ANCHOR = 10.0

Scorer = Callable[[np.ndarray], np.ndarray]


def fit(candidate: Candidate, train: Sequence[Example]) -> tuple[Scorer, np.ndarray | None]:
    """A scoring function of a design matrix, and the linear coefficients if linear."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import LogisticRegression

    xs = [design(e, candidate) for e in train]
    if candidate.family == "pointwise":
        x = np.vstack(xs)
        g = np.concatenate([e.grades for e in train])
        model = LogisticRegression(C=candidate.c, max_iter=2000)
        model.fit(x, (g > 0).astype(int), sample_weight=np.where(g > 1, 2.0, 1.0))
        coef = model.coef_[0]
        return (lambda m: m @ coef), coef
    if candidate.family == "pairwise":
        diffs, signs = [], []
        rng = np.random.default_rng(0)
        for x, e in zip(xs, train, strict=True):
            for better in (1, 2):
                hi = np.flatnonzero(e.grades == better)
                lo = np.flatnonzero(e.grades < better)
                if not len(hi) or not len(lo):
                    continue
                i, j = np.meshgrid(hi, lo, indexing="ij")
                d = x[i.ravel()] - x[j.ravel()]
                flip = rng.random(len(d)) < 0.5
                diffs.append(np.where(flip[:, None], -d, d))
                signs.append(np.where(flip, 0, 1))
        model = LogisticRegression(C=candidate.c, fit_intercept=False, max_iter=2000)
        model.fit(np.vstack(diffs), np.concatenate(signs))
        coef = model.coef_[0]
        return (lambda m: m @ coef), coef
    if candidate.family == "ascent":
        coef = coordinate_ascent(xs, train, [f == "total" for f in candidate.features])
        return (lambda m: m @ coef), coef
    x = np.vstack(xs)
    g = np.concatenate([e.grades for e in train]).astype(float)
    boosted = HistGradientBoostingRegressor(
        max_depth=3, max_iter=150, learning_rate=0.05, min_samples_leaf=40, random_state=0
    )
    boosted.fit(x, g)
    return (lambda m: np.asarray(boosted.predict(m))), None


ASCENT_STEPS = (-0.5, -0.2, -0.1, -0.05, 0.05, 0.1, 0.2, 0.5)
ASCENT_PASSES = 2


def coordinate_ascent(
    xs: Sequence[np.ndarray], train: Sequence[Example], start: list[bool]
) -> np.ndarray:
    """Linear weights that raise the training profiles' mean (nDCG@10 + AP) / 2 directly
    (Metzler and Croft's coordinate ascent, as in RankLib), from main's order (weight 1 on
    its total, 0 elsewhere): each pass tries each weight moved by each of ``ASCENT_STEPS``
    and keeps the best move that gains; no metric surrogate, few moves (the regularisation)."""
    weights = np.asarray(start, dtype=np.float64)
    if not weights.any():
        weights[:] = 1.0

    def score(w: np.ndarray) -> float:
        pairs = []
        for x, e in zip(xs, train, strict=True):
            order = order_best_first(x @ w, upvotes=e.upvotes, ids=e.ids)
            ranked = [e.ids[i] for i in order]
            pairs.append((ndcg_at(ranked, e.labels) + average_precision(ranked, e.labels)) / 2)
        return float(np.mean(pairs))

    best = score(weights)
    for _ in range(ASCENT_PASSES):
        for j in range(len(weights)):
            tried = []
            for step in ASCENT_STEPS:
                w = weights.copy()
                w[j] += step
                tried.append((score(w), step))
            value, step = max(tried)
            if value > best + 1e-4:
                best = value
                weights[j] += step
    return weights


def evaluate(example: Example, score: Scorer, candidate: Candidate) -> tuple[float, float]:
    values = score(design(example, candidate))
    order = order_best_first(values, upvotes=example.upvotes, ids=example.ids)
    ranked = [example.ids[i] for i in order]
    return ndcg_at(ranked, example.labels), average_precision(ranked, example.labels)


def candidates() -> list[Candidate]:
    out = []
    for features in (tuple(PARTS), tuple(ALL)):
        for scale in ("max", "z"):
            for family in ("pointwise", "pairwise"):
                for c in (0.01, 0.1, 1.0):
                    out.append(Candidate(family, features, scale, c))
    for family in ("pointwise", "pairwise"):
        for c in (0.01, 0.1, 1.0):
            out.append(Candidate(family, tuple(ALL), "anchored", c))
    out.append(Candidate("ascent", tuple(PARTS), "max"))
    out.append(Candidate("ascent", tuple(ALL), "max"))
    out.append(BOOSTED)
    return out


BOOSTED = Candidate("boosted", tuple(ALL), "max")
CEILINGS = [
    Candidate("pairwise", tuple(ALL), "max", 1.0),
    Candidate("pairwise", tuple(ALL), "max", 100.0),
    Candidate("pointwise", tuple(ALL), "z", 100.0),
    Candidate("ascent", tuple(ALL), "max"),
    BOOSTED,
]


# --- folds and the report -------------------------------------------------------------

Scores = dict[Key, tuple[float, float]]


def cross_set(data: dict[Key, Example], candidate: Candidate, mode: str) -> Scores:
    out: Scores = {}
    for train_set, test_set in (TUNING, TUNING[::-1]):
        train = [e for k, e in data.items() if k[0] == train_set and k[2] == mode]
        score, _ = fit(candidate, train)
        for k, e in data.items():
            if k[0] == test_set and k[2] == mode:
                out[k] = evaluate(e, score, candidate)
    return out


def leave_one_out(data: dict[Key, Example], candidate: Candidate, mode: str) -> Scores:
    keys = [k for k in data if k[0] in TUNING and k[2] == mode]
    out: Scores = {}
    for held in keys:
        score, _ = fit(candidate, [data[k] for k in keys if k != held])
        out[held] = evaluate(data[held], score, candidate)
    return out


def held_out(data: dict[Key, Example], candidate: Candidate, mode: str) -> tuple[Scores, Any]:
    train = [e for k, e in data.items() if k[0] in TUNING and k[2] == mode]
    score, coef = fit(candidate, train)
    out = {
        k: evaluate(e, score, candidate)
        for k, e in data.items()
        if k[0] == DEVSET3.stem and k[2] == mode
    }
    return out, coef


def in_sample(data: dict[Key, Example], candidate: Candidate, mode: str) -> Scores:
    """Trained and scored on the same 20 profiles: how much the features could give at all
    to this family (a fit, not an estimate)."""
    keys = [k for k in data if k[0] in TUNING and k[2] == mode]
    score, _ = fit(candidate, [data[k] for k in keys])
    return {k: evaluate(data[k], score, candidate) for k in keys}


def cell(scores: Scores, set_name: str | None = None) -> str:
    pairs = [v for k, v in scores.items() if set_name is None or k[0] == set_name]
    return f"{mean(pairs):.3f}/{mean(pairs, 1):.3f}"


def paired(scores: Scores, main: Scores, set_name: str | None = None, k: int = 0) -> str:
    d = np.asarray([v[k] - main[key][k] for key, v in scores.items() if set_name in (None, key[0])])
    if not len(d):
        return "-"
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
    return f"{d.mean():+.3f}±{se:.3f} ({int((d > 1e-9).sum())}/{int((d < -1e-9).sum())})"


def objective(scores: Scores) -> float:
    return float(np.mean([(n + a) / 2 for n, a in scores.values()]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-ltr"))
    parser.add_argument("--mode", action="append", choices=MODES)
    parser.add_argument("--coefficients", action="store_true", help="the chosen model's weights")
    parser.add_argument(
        "--ceilings",
        action="store_true",
        help="only in-sample fits of the least regularised models",
    )
    opts = parser.parse_args()
    modes = tuple(opts.mode or MODES)
    harness = Harness(opts.workdir)
    started = time.perf_counter()
    data, main_path = examples(harness)
    took = time.perf_counter() - started
    print(f"features: {len(ALL)} for {len(data)} (set, profile, mode); {took:.1f} s")
    # main's figures from the harness, and the same through this script's ranking path
    reference = harness.run()
    main_scores: Scores = {}
    for set_name, specs in harness.sets:
        for mode in MODES:
            for spec, pair in zip(specs, reference[(set_name, mode)], strict=True):
                key = (set_name, spec["name"], mode)
                main_scores[key] = pair
                if not np.allclose(pair, main_path[key]):
                    raise SystemExit(f"ranking path differs from Harness.run at {key}")
    print("main (hand-set fusion), nDCG@10/MAP: devset | devset2 | 20 | devset3")
    for mode in MODES:
        tuning = {k: v for k, v in main_scores.items() if k[2] == mode and k[0] in TUNING}
        held = {k: v for k, v in main_scores.items() if k[2] == mode and k[0] == DEVSET3.stem}
        print(
            f"  {mode:<8} {cell(tuning, DEVSET.stem)} | {cell(tuning, DEVSET2.stem)} |"
            f" {cell(tuning)} | {cell(held)}"
        )
    if opts.ceilings:
        for mode in modes:
            for candidate in CEILINGS:
                fitted = in_sample(data, candidate, mode)
                print(f"  {mode:<8} in-sample {candidate.label:<34} {cell(fitted)}", flush=True)
        harness.store.close()
        return
    for mode in modes:
        print(
            f"\n== {mode}: candidate | cross-set: devset2 (trained on devset), devset (trained"
            " on devset2) | leave-one-profile-out over 20 | paired nDCG@10 less main's:"
            " leave-one-out, devset2, devset (mean ± s.e. (profiles up/down))"
        )
        best: tuple[float, Candidate] | None = None
        for candidate in candidates():
            crossed = cross_set(data, candidate, mode)
            loo = leave_one_out(data, candidate, mode)
            print(
                f"  {candidate.label:<34} {cell(crossed, DEVSET2.stem)}",
                f"{cell(crossed, DEVSET.stem)} | {cell(loo)} | {paired(loo, main_scores)}",
                f"| {paired(crossed, main_scores, DEVSET2.stem)}",
                f"{paired(crossed, main_scores, DEVSET.stem)}",
                flush=True,
            )
            if best is None or objective(loo) > best[0]:
                best = (objective(loo), candidate)
        assert best is not None
        chosen = best[1]
        crossed = cross_set(data, chosen, mode)
        loo = leave_one_out(data, chosen, mode)
        held, coef = held_out(data, chosen, mode)
        print(f"-- {mode}: chosen by leave-one-out (nDCG@10+MAP)/2: {chosen.label}")
        rows: list[tuple[str, str | None, Scores]] = [
            ("devset2, trained on devset", DEVSET2.stem, crossed),
            ("devset, trained on devset2", DEVSET.stem, crossed),
            ("20, leave one profile out", None, loo),
            ("20, in-sample (a fit)", None, in_sample(data, chosen, mode)),
            ("20, in-sample, boosted (a fit)", None, in_sample(data, BOOSTED, mode)),
            ("devset3, trained on the 20", DEVSET3.stem, held),
        ]
        for label, subset, scores in rows:
            base = {k: main_scores[k] for k in scores if subset in (None, k[0])}
            print(
                f"  {label:<30} main {cell(base)}  learned {cell(scores, subset)}"
                f"  nDCG@10 {paired(scores, main_scores, subset)}"
                f"  AP {paired(scores, main_scores, subset, 1)}"
            )
        if opts.coefficients and coef is not None:
            weights = sorted(zip(chosen.features, coef, strict=True), key=lambda fw: -abs(fw[1]))
            print(
                "  coefficients (trained on the 20):",
                ", ".join(f"{f} {w:+.2f}" for f, w in weights),
            )
    harness.store.close()


if __name__ == "__main__":
    main()
