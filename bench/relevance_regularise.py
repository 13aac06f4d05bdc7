"""Score regularisation over a paper-similarity graph (Diaz 2005), swept in process.

The cluster hypothesis: papers close to each other are relevant to the same profiles. After
the scorer's total, the best ``N`` papers are linked to their ``k`` nearest among themselves
(embedding cosine, or the cosine of their TF-IDF vectors as ``expansion.paper_vector`` builds
them), and each paper's score is blended with its neighbours':

- ``step``: one step, (1 - alpha) s + alpha x (the neighbours' cosine-weighted mean of s);
- ``walk``: that step iterated to its fixed point, (1 - alpha)(I - alpha P)^-1 s, P the
  row-normalised kNN matrix (``--fine`` only);
- ``solve``: the closed form f = (1 - alpha)(I - alpha S)^-1 s with S the symmetrically
  normalised (mutual) kNN matrix, as ``ranking/liked_graph.py`` spreads liked papers.

The score is first mapped (``raw``: the total over the best candidate's; ``rank``: 1 - rank/N;
``z``: z-score over the candidates; ``cal``: above the candidates' median, by the best, as
``semantic`` calibrates cosines) and the candidates are re-ordered by the blend, above
every other paper. Each profile's total is computed once per run (semantic and lexical)
with main's code (``relevance_fusion.Harness``), so every variant is a few ms per profile.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_regularise.py [--workdir DIR] [--quick] \
        [--fine] [--control] [--dump FILE.json]
    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_regularise.py emb/step/raw/10/0.1/20/0
    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_regularise.py --held-out 'VARIANT'

Tuning uses devset and devset2 only; ``--held-out`` prints devset3 for the named variants
(``graph/how/transform/k/alpha/N/mutual``, e.g. ``emb/step/raw/5/0.2/100/1``); named
variants print the per-profile paired change. ``--control`` adds a graph of random cosines
to the grid: how often chance alone passes the bar.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import judged
from bench.relevance_fusion import MODES, Harness
from digestbot.ranking.expansion import paper_vector
from digestbot.ranking.explain import order_best_first

TUNING = ("devset", "devset2")


@dataclass(frozen=True)
class Variant:
    graph: str  # "emb" | "tfidf"
    how: str  # "step" | "solve"
    transform: str  # "raw" | "rank" | "z"
    k: int
    alpha: float
    top: int
    mutual: bool

    @property
    def label(self) -> str:
        return (
            f"{self.graph}/{self.how}/{self.transform}/{self.k}/{self.alpha}/{self.top}/"
            f"{int(self.mutual)}"
        )

    @classmethod
    def parse(cls, text: str) -> Variant:
        g, h, t, k, a, n, m = text.split("/")
        return cls(g, h, t, int(k), float(a), int(n), bool(int(m)))


def tag(set_name: str) -> str:
    """devset -> 1, devset2 -> 2, devset3 -> 3."""
    return set_name[-1] if set_name[-1].isdigit() else "1"


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.asarray(matrix / np.where(norm > 0, norm, 1.0), dtype=np.float64)


def tfidf_vectors(harness: Harness) -> np.ndarray:
    """Every row's L2-normalised TF-IDF vector (``expansion.paper_vector``), dense."""
    vectors = [
        paper_vector(harness.index, t, a) for t, a in harness.texts(range(harness.index.n_rows))
    ]
    cols = sorted({c for v in vectors for c in v})
    at = {c: j for j, c in enumerate(cols)}
    out = np.zeros((len(vectors), len(cols)))
    for r, v in enumerate(vectors):
        for c, w in v.items():
            out[r, at[c]] = w
    return unit_rows(out)


def knn_matrix(similarity: np.ndarray, k: int, *, mutual: bool) -> np.ndarray:
    """Cosine weights to each row's ``k`` nearest rows (mutual: kept only both ways;
    otherwise symmetrised by the larger)."""
    n = len(similarity)
    k = min(k, n - 1)
    sim = similarity.copy()
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    links = np.zeros((n, n))
    rows = np.arange(n)[:, None]
    links[rows, nearest] = np.maximum(sim[rows, nearest], 0.0)
    return np.minimum(links, links.T) if mutual else np.maximum(links, links.T)


def mapped(values: np.ndarray, transform: str) -> np.ndarray:
    if transform == "raw":
        top = values.max()
        return np.asarray(values / top if top > 0 else values, dtype=np.float64)
    if transform == "rank":
        order = np.argsort(-values, kind="stable")
        rank = np.empty(len(values))
        rank[order] = np.arange(len(values))
        return 1.0 - rank / len(values)
    if transform == "cal":  # as the semantic evidence: counts above the median, by the best
        median = float(np.median(values))
        top = values.max() - median
        return np.asarray(np.maximum(values - median, 0.0) / (top if top > 0 else 1.0))
    if transform == "z":
        sd = values.std()
        return np.asarray((values - values.mean()) / (sd if sd > 0 else 1.0), dtype=np.float64)
    raise ValueError(transform)


def regularised(values: np.ndarray, similarity: np.ndarray, v: Variant) -> np.ndarray:
    """The candidates' blended scores (their order is what counts)."""
    s = mapped(values, v.transform)
    links = knn_matrix(similarity, v.k, mutual=v.mutual)
    degree = links.sum(axis=1)
    if v.how == "step":
        mean_nb = np.where(degree > 0, links @ s / np.where(degree > 0, degree, 1.0), s)
        return (1 - v.alpha) * s + v.alpha * mean_nb
    n = len(s)
    if v.how == "walk":  # the step iterated to its fixed point: (1 - alpha)(I - alpha P)^-1 s
        walk = np.where(
            degree[:, None] > 0, links / np.where(degree > 0, degree, 1.0)[:, None], 0.0
        )
        walk[degree == 0, degree == 0] = 1.0
        stay = np.eye(n) - v.alpha * walk
        return np.asarray((1 - v.alpha) * np.linalg.solve(stay, s), dtype=np.float64)
    scale = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    normalised = links * scale[:, None] * scale[None, :]
    f = np.linalg.solve(np.eye(n) - v.alpha * normalised, s)
    return np.asarray((1 - v.alpha) * f, dtype=np.float64)


class Sweep:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        emb = unit_rows(np.asarray(harness.ready.vectors, dtype=np.float64))
        tfidf = tfidf_vectors(harness)
        # a control: a graph with no bearing on relevance (random cosines, fixed seed), so
        # how often chance alone passes the bar is measured on the same grid
        noise = unit_rows(np.random.default_rng(7).normal(size=(len(emb), 64)))
        self.similarity = {"emb": emb @ emb.T, "tfidf": tfidf @ tfidf.T, "rand": noise @ noise.T}
        self.totals: dict[tuple[bool, str, str, str], np.ndarray] = {}

    def total(self, lexical: bool, set_name: str, name: str, mode: str) -> np.ndarray:
        key = (lexical, set_name, name, mode)
        if key not in self.totals:
            profile, liked_rows = self.h.profiles[(set_name, name, mode)]
            evidence = None if lexical else self.h.evidence(profile, liked_rows)
            self.totals[key] = self.h.scores(profile, liked_rows, evidence).total
        return self.totals[key]

    def run(
        self,
        variant: Variant | None,
        *,
        lexical: bool,
        sets: Iterable[str] = TUNING,
        modes: Iterable[str] = MODES,
    ) -> dict[tuple[str, str], list[tuple[float, float]]]:
        h = self.h
        out: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for set_name, specs in h.sets:
            if set_name not in sets:
                continue
            for mode in modes:
                pairs = []
                for spec in specs:
                    total = self.total(lexical, set_name, spec["name"], mode).copy()
                    if variant is not None:
                        live_total = np.where(h.index.live, total, 0.0)
                        pool = np.flatnonzero(live_total > 0)
                        if len(pool) > variant.top:
                            keep = np.argsort(-live_total[pool], kind="stable")[: variant.top]
                            pool = np.sort(pool[keep])
                        if len(pool) > 2:
                            sim = self.similarity[variant.graph][np.ix_(pool, pool)]
                            blended = regularised(total[pool], sim, variant)
                            # candidates above every other paper, in the blend's order
                            spread = blended.max() - blended.min()
                            lifted = (blended - blended.min()) / (spread if spread > 0 else 1.0)
                            total[pool] = total.max() + 1.0 + lifted
                    _, liked_rows = h.profiles[(set_name, spec["name"], mode)]
                    order = order_best_first(
                        total[h.live],
                        upvotes=h.index.upvotes[h.live],
                        ids=[h.ids[r] for r in h.live.tolist()],
                    )
                    ranked = [h.ids[r] for r in h.live[order].tolist()]
                    pairs.append(judged(spec, mode, ranked, [h.ids[r] for r in liked_rows]))
                out[(set_name, mode)] = pairs
        return out


def means(
    result: dict[tuple[str, str], list[tuple[float, float]]],
) -> dict[tuple[str, str], tuple[float, float]]:
    return {
        key: (float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs])))
        for key, pairs in result.items()
    }


def line(
    label: str, result: dict[tuple[str, str], list[tuple[float, float]]], base: Any = None
) -> str:
    m = means(result)
    cells = []
    for key in sorted(m, key=lambda k: (MODES.index(k[1]), k[0])):
        n, a = m[key]
        if base is not None:
            bn, ba = base[key]
            cells.append(
                f"{key[1][:2]}:{tag(key[0])} {n:.3f}/{a:.3f} ({n - bn:+.3f}/{a - ba:+.3f})"
            )
        else:
            cells.append(f"{key[1][:2]}:{tag(key[0])} {n:.3f}/{a:.3f}")
    return f"{label:<30} " + "  ".join(cells)


def grid(quick: bool, fine: bool = False, control: bool = False) -> list[Variant]:
    graphs: tuple[str, ...] = ("emb", "tfidf", "rand") if control else ("emb", "tfidf")
    hows: tuple[str, ...] = ("step", "solve")
    transforms: tuple[str, ...] = ("raw", "rank", "z", "cal")
    ks: tuple[int, ...] = (3, 5, 7, 10)
    alphas: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
    tops: tuple[int, ...] = (30, 50, 100, 200)
    mutuals = (True, False)
    if quick:
        ks, alphas, tops = (5, 10), (0.1, 0.3), (100,)
    if fine:  # near the identity, where the coarse grid was flat; step and walk are
        # affine-equivariant, so "raw" stands for "z" too
        hows, transforms, alphas, tops = (
            ("step", "walk"),
            ("raw",),
            (0.05, 0.1, 0.15, 0.2),
            (20, 30, 50),
        )
    product = itertools.product(graphs, hows, transforms, ks, alphas, tops, mutuals)
    return [Variant(g, h, t, int(k), float(a), int(n), m) for g, h, t, k, a, n, m in product]


NOISE = 0.005


def passes(
    cand: dict[Any, tuple[float, float]],
    base: dict[Any, tuple[float, float]],
    mode: str,
    *,
    noise: float = 0.005,
) -> bool:
    """Up on both tuning sets in nDCG@10 and MAP not down beyond ``noise`` on either."""
    return all(
        cand[(s, mode)][0] > base[(s, mode)][0] and cand[(s, mode)][1] >= base[(s, mode)][1] - noise
        for s in TUNING
    )


def paired(result: Any, base: Any) -> str:
    """Per (set, mode): the per-profile nDCG@10 change, mean +- standard error (up/down)."""
    cells = []
    for key in sorted(result, key=lambda k: (MODES.index(k[1]), k[0])):
        d = np.array([a[0] - b[0] for a, b in zip(result[key], base[key], strict=True)])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
        up, down = int((d > 1e-9).sum()), int((d < -1e-9).sum())
        cells.append(f"{key[1][:2]}:{tag(key[0])} {d.mean():+.3f}±{se:.3f} ({up}/{down})")
    return f"{'':<30} paired " + "  ".join(cells)


def flat(m: dict[tuple[str, str], tuple[float, float]]) -> dict[str, list[float]]:
    return {f"{k[0]}:{k[1]}": list(v) for k, v in m.items()}


def marginals(rows: list[Any], base_sem: Any, base_lex: Any) -> None:
    """Mean change in nDCG@10 over the variants holding each parameter value (both tuning
    sets), per run and mode: where the grid is up as a whole, not one lucky point."""
    names = ("graph", "how", "transform", "k", "alpha", "top", "mutual")
    print("\n== mean nDCG@10 change over the variants with each value (devset, devset2) ==")
    print(
        f"{'parameter':<18} "
        + "  ".join(f"{r[:3]} {m[:4]:<14}" for r in ("sem", "lex") for m in MODES)
    )
    for name in names:
        for value in sorted({getattr(v, name) for v, _, _ in rows}, key=str):
            picked = [r for r in rows if getattr(r[0], name) == value]
            cells = []
            for which, base in ((1, base_sem), (2, base_lex)):
                for mode in MODES:
                    d = [
                        np.mean([r[which][(t, mode)][0] - base[(t, mode)][0] for r in picked])
                        for t in TUNING
                    ]
                    cells.append(f"{d[0]:+.4f} {d[1]:+.4f}")
            print(f"{name + '=' + str(value):<18} " + "  ".join(cells))


Means = dict[tuple[str, str], tuple[float, float]]


def report(
    rows: list[tuple[Variant, Means, Means]], base_sem: Means, base_lex: Means, *, top: int
) -> None:
    """Per mode the best variants of the semantic run, and the product pairs that pass.

    A product pair: the semantic run with the embedding graph, the lexical run (an install
    without embeddings) with the TF-IDF graph of the same parameters. It passes a mode when
    the semantic run rises in nDCG@10 on both tuning sets and loses at most 0.005 MAP on
    either, and the lexical run loses at most 0.005 nDCG@10 on either.
    """
    by_label = {v.label: (v, sem_m, lex_m) for v, sem_m, lex_m in rows}

    def lexical_twin(v: Variant) -> Means | None:
        twin = by_label.get(replace(v, graph="tfidf").label)
        return twin[2] if twin else None

    def ok(v: Variant, sem_m: Means, mode: str) -> bool:
        lex_m = lexical_twin(v)
        return (
            v.graph == "emb"
            and lex_m is not None
            and passes(sem_m, base_sem, mode)
            and all(lex_m[(t, mode)][0] >= base_lex[(t, mode)][0] - NOISE for t in TUNING)
        )

    def cells(m: Means, base: Means, modes: tuple[str, ...]) -> str:
        return "  ".join(
            f"{mode[:2]}:{tag(t)} {m[(t, mode)][0] - base[(t, mode)][0]:+.3f}/"
            f"{m[(t, mode)][1] - base[(t, mode)][1]:+.3f}"
            for mode in modes
            for t in TUNING
        )

    for mode in MODES:
        print(f"\n== {mode}: best {top} by semantic nDCG@10 over both tuning sets (change) ==")
        ranked = sorted(rows, key=lambda r: -sum(r[1][(t, mode)][0] for t in TUNING))
        for v, sem_m, lex_m in ranked[:top]:
            flag = "PASS" if ok(v, sem_m, mode) else ""
            print(
                f"{v.label:<28} sem {cells(sem_m, base_sem, (mode,))}"
                f" | lex (same graph) {cells(lex_m, base_lex, (mode,))} {flag}"
            )
        n_pass = sum(ok(v, sem_m, mode) for v, sem_m, _ in rows)
        n_emb = sum(v.graph == "emb" for v, _, _ in rows)
        print(f"{mode}: {n_pass} of {n_emb} product pairs pass the bar")
    print("\n== variants whose semantic run alone passes the bar, per graph ==")
    for graph in sorted({v.graph for v, _, _ in rows}):
        mine = [r for r in rows if r[0].graph == graph]
        counts = "  ".join(
            f"{mode} {sum(passes(r[1], base_sem, mode) for r in mine)}" for mode in MODES
        )
        both = sum(
            passes(r[1], base_sem, "full") and passes(r[1], base_sem, "keywords") for r in mine
        )
        print(f"{graph:<6} of {len(mine)}: {counts}  full and keywords {both}")
    print("\n== product pairs passing for full AND keywords (one setting for both) ==")
    joint = [r for r in rows if ok(r[0], r[1], "full") and ok(r[0], r[1], "keywords")]
    joint.sort(key=lambda r: -sum(r[1][(t, m)][0] for t in TUNING for m in ("full", "keywords")))
    for v, sem_m, _ in joint:
        twin = lexical_twin(v)
        assert twin is not None
        print(f"{v.label:<28} sem {cells(sem_m, base_sem, MODES)}")
        print(f"{'':<28} lex {cells(twin, base_lex, MODES)} (TF-IDF graph)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-regularise"))
    parser.add_argument("--quick", action="store_true", help="a small grid")
    parser.add_argument(
        "--held-out", action="store_true", help="print devset3 for the variants named"
    )
    parser.add_argument("--top", type=int, default=25, help="best variants printed per mode")
    parser.add_argument("--fine", action="store_true", help="the grid near the identity")
    parser.add_argument(
        "--control", action="store_true", help="add a random graph: how often chance passes"
    )
    parser.add_argument("--dump", type=Path, help="write every variant's figures (JSON)")
    parser.add_argument("variants", nargs="*", help="graph/how/transform/k/alpha/N/mutual")
    args = parser.parse_args()
    sweep = Sweep(Harness(args.workdir, held_out=True))
    sets = (*TUNING, "devset3") if args.held_out else TUNING
    if args.variants:
        for lexical in (False, True):
            run = "lexical " if lexical else "semantic"
            base = sweep.run(None, lexical=lexical, sets=sets)
            print(line(f"{run} main", base))
            for text in args.variants:
                v = Variant.parse(text)
                result = sweep.run(v, lexical=lexical, sets=sets)
                print(line(f"{run} {v.label}", result, means(base)))
                print(paired(result, base))
        return
    base_sem = means(sweep.run(None, lexical=False))
    base_lex = means(sweep.run(None, lexical=True))
    print(line("semantic main", sweep.run(None, lexical=False)))
    print(line("lexical  main", sweep.run(None, lexical=True)))
    rows: list[tuple[Variant, Means, Means]] = []
    for v in grid(args.quick, args.fine, args.control):
        rows.append((v, means(sweep.run(v, lexical=False)), means(sweep.run(v, lexical=True))))
    if args.dump:
        args.dump.write_text(
            json.dumps(
                {
                    "base": {"semantic": flat(base_sem), "lexical": flat(base_lex)},
                    "variants": [
                        {"variant": v.label, "semantic": flat(a), "lexical": flat(b)}
                        for v, a, b in rows
                    ],
                },
                indent=1,
            )
        )
    marginals(rows, base_sem, base_lex)
    report(rows, base_sem, base_lex, top=args.top)


if __name__ == "__main__":
    main()
