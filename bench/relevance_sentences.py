"""Sweep: sentence-level (multi-vector) paper embeddings as semantic evidence, in process.

Each paper has one MiniLM vector of its title + abstract and one of its title
(``MODEL#title``, mixed at ``ranking.title_weight``). A short keyword compared with a
whole-abstract vector is diluted; this script tests whether vectors of the abstract's
sentences (or 2-sentence chunks), scored against each profile text by max-sim or the
mean of the best two and mixed like the title vectors, help. The store is ingested and
embedded once (``bench.relevance_inprocess.Harness``), the chunks are embedded once
(kept in the work folder), and every variant re-scores the full, keyword-only and
like-only profiles of devset.yaml + devset2.yaml through ``service.score_store`` with
the variant's semantic evidence. devset3.yaml (held out) is printed as a check only.

The first line scores the product's own path (``semantic=None``: ``ready_vectors`` and
``semantic_scores`` as ``digestbot rank`` runs them); the second line the variant code
with no chunk share, which must match it exactly.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_sentences.py [--workdir DIR]
        [--group main|more|calib] [--only TEXT ...] [--paired] [--per-profile] [--quick]
    .venv/bin/python bench/relevance_sentences.py --cost 100000   # scoring cost, stand-ins

Groups: ``main`` (chunk scheme x max/top-2 x share 0.2-0.5, beside or instead of the
title vectors), ``more`` (calibrated mixing, chunks for the per-keyword texts only,
title share 0.2, chunks in the liked centroid's cosine, mean of chunks), ``calib``
(shares 0.1-0.3 around the calibrated mix, with its no-chunk control). ``--paired``
prints each variant's per-profile nDCG@10 change against the product over the 20
tuning profiles (mean ± standard error, profiles up / down).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_eval import (
    DEVSET,
    DEVSET2,
    DEVSET3,
    average_precision,
    ndcg_at,
    profile_config,
)
from bench.relevance_inprocess import NOW_VALUE, Harness
from digestbot.config import Profile
from digestbot.ranking import semantic as sem
from digestbot.ranking import service
from digestbot.ranking.explain import order_best_first
from digestbot.ranking.liked_graph import GRAPH_CANDIDATES, graph_rows, label_spreading
from digestbot.store.ranking import load_texts, resolve_paper_pks

MODES = ("full", "keywords", "like")
SETS = (DEVSET, DEVSET2, DEVSET3)
TUNING = ("devset", "devset2")

# a sentence ends at . ! ? followed by space and a capital, digit or opening bracket; not
# after common abbreviations ("e.g. the", "et al. In", "i.e. a", "Fig. 2")
_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[\"'])")
_ABBREV = re.compile(r"(?:\b(?:e\.g|i\.e|et al|etc|vs|Fig|Eq|cf|approx|resp|Sec|No)\.)$", re.I)


def sentences(abstract: str) -> list[str]:
    """The abstract's sentences (a rule-based split; abbreviations are not ends)."""
    parts = [p.strip() for p in _END.split(" ".join(abstract.split())) if p.strip()]
    out: list[str] = []
    for part in parts:
        if out and (_ABBREV.search(out[-1]) or len(out[-1]) < 20):
            out[-1] = f"{out[-1]} {part}"
        else:
            out.append(part)
    return out


def chunks(abstract: str, scheme: str, title: str) -> list[str]:
    """The texts embedded per paper for ``scheme``: s1 one sentence each, s2 two sentences
    each (pairs, not overlapping), w2 every window of two (overlapping), t1 each sentence
    prefixed by the title."""
    sents = sentences(abstract) or [title]
    if scheme == "s1":
        return sents
    if scheme == "s2":
        return [" ".join(sents[i : i + 2]) for i in range(0, len(sents), 2)]
    if scheme == "w2":
        if len(sents) == 1:
            return sents
        return [" ".join(sents[i : i + 2]) for i in range(len(sents) - 1)]
    if scheme == "t1":
        return [f"{title}. {s}" for s in sents]
    raise ValueError(scheme)


@dataclass
class Chunks:
    """Chunk vectors padded per paper: (rows, L, dim), which slots hold one, which rows
    have any."""

    vectors: np.ndarray
    mask: np.ndarray
    has: np.ndarray

    def cosines(self, queries: np.ndarray, how: str) -> np.ndarray:
        """Per paper, max (``max``) or mean of the best two (``top2``) chunk cosines to
        each query: (rows,) for one query, (rows, K) for a column per query."""
        single = queries.ndim == 1
        q = queries[:, None] if single else queries
        n, slots, dim = self.vectors.shape
        cos = (self.vectors.reshape(-1, dim) @ q).reshape(n, slots, -1).astype(np.float64)
        cos = np.where(self.mask[:, :, None], cos, -np.inf)
        if how == "max":
            out = cos.max(axis=1)
        elif how == "top2":
            best = np.sort(cos, axis=1)[:, -2:, :]
            second = np.where(np.isfinite(best[:, 0]), best[:, 0], best[:, 1])
            out = (second + best[:, 1]) / 2
        elif how == "mean":
            out = (
                np.where(self.mask[:, :, None], cos, 0).sum(axis=1)
                / np.maximum(self.mask.sum(axis=1), 1)[:, None]
            )
        else:
            raise ValueError(how)
        out = np.where(np.isfinite(out), out, 0.0)
        return out[:, 0] if single else out


@dataclass(frozen=True)
class Variant:
    """How the evidence of one profile text is made from a paper's vectors.

    cosine = (1 - title - chunk) x title+abstract + title x title + chunk x chunk-aggregate
    (each share only where the paper has that vector). ``calibrate``: the title and chunk
    cosines are first calibrated (median to best) alone, as is the full one, then mixed.
    ``liked``: the chunk aggregate's share in the liked centroid's cosine (like mode)."""

    name: str
    scheme: str = "s1"
    how: str = "max"
    title: float = 0.3
    chunk: float = 0.0
    calibrate: bool = False
    liked: float = 0.0
    each_only: bool = False  # chunks only for the per-keyword cosines (short texts)


class SentenceHarness(Harness):
    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.sets = [(p.stem, yaml.safe_load(p.read_text("utf-8"))["profiles"]) for p in SETS]
        ready = sem.row_vectors(
            self.store,
            self.embedder,
            row_of=self.index.row_of_pk(),
            n_rows=self.index.n_rows,
            settings=self.semantic,
        )
        assert ready is not None and ready.titles is not None
        self.vectors, self.has = ready.vectors, ready.has
        self.title_vectors: sem.TitleVectors = ready.titles
        self.workdir = workdir
        pks = [int(pk) for pk in self.index.pks]
        found = load_texts(self.store, pks)
        self.texts = [found.get(pk, ("", "")) for pk in pks]
        self._chunks: dict[str, Chunks] = {}

    def chunks(self, scheme: str) -> Chunks:
        if scheme not in self._chunks:
            path = self.workdir / f"chunks-{scheme}.npz"
            per_row = [
                chunks(abstract, scheme, title) if title or abstract else []
                for title, abstract in self.texts
            ]
            flat = [t for row in per_row for t in row]
            if path.exists():
                vectors = np.load(path)["vectors"]
            else:
                started, cpu = time.perf_counter(), time.process_time()
                vectors = self.embedder.embed(flat)
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu
                print(
                    f"# embedded {len(flat)} {scheme} chunks of {len(per_row)} papers in "
                    f"{wall:.1f} s wall, {cpu:.1f} s CPU ({len(flat) / wall:.0f} chunks/s)"
                )
                np.savez(path, vectors=vectors)
            assert len(vectors) == len(flat)
            slots = max(len(row) for row in per_row)
            out = np.zeros((len(per_row), slots, vectors.shape[1]), dtype=np.float32)
            mask = np.zeros((len(per_row), slots), dtype=bool)
            at = 0
            for r, row in enumerate(per_row):
                out[r, : len(row)] = vectors[at : at + len(row)]
                mask[r, : len(row)] = True
                at += len(row)
            counts = mask.sum(axis=1)
            print(
                f"# {scheme}: {len(flat)} chunks, {counts.mean():.1f} a paper "
                f"(max {slots}), {np.mean([len(t.split()) for t in flat]):.0f} words each"
            )
            self._chunks[scheme] = Chunks(out, mask, np.asarray(mask.any(axis=1)))
        return self._chunks[scheme]

    def evidence(self, variant: Variant, profile: Profile, liked_rows: list[int]) -> Any:
        with patched(self, variant):
            return sem.semantic_scores(
                self.embedder,
                self.vectors,
                profile,
                liked_rows=liked_rows,
                has=self.has,
                store=self.store,
                titles=self.title_vectors,
            )

    def score(
        self, variant: Variant | None, *, per_profile: bool = False
    ) -> dict[str, dict[str, list[tuple[float, float]]]]:
        """(nDCG@10, AP) per mode, set and profile; ``variant`` None: the product's path."""
        out: dict[str, dict[str, list[tuple[float, float]]]] = {m: {} for m in MODES}
        live = np.flatnonzero(self.index.live)
        for set_name, specs in self.sets:
            for mode in MODES:
                pairs = out[mode].setdefault(set_name, [])
                for spec in specs:
                    config = profile_config(spec, mode)
                    profile = Profile(**config)
                    evidence = None
                    if variant is not None:
                        found = resolve_paper_pks(self.store, profile.like)
                        rows = self.index.rows_of(list(found.values())).tolist()
                        evidence = self.evidence(variant, profile, [r for r in rows if r >= 0])
                    scores, _, liked_rows = service.score_store(
                        self.store,
                        self.index,
                        profile,
                        now=NOW_VALUE,
                        settings=self.semantic,
                        semantic=evidence,
                    )
                    order = order_best_first(
                        scores.total[live],
                        upvotes=self.index.upvotes[live],
                        ids=[self.ids[r] for r in live],
                    )
                    liked = {self.ids[r] for r in liked_rows} if mode == "like" else set()
                    ranked = [self.ids[r] for r in live[order] if self.ids[r] not in liked]
                    grades = {
                        item["id"]: int(item["grade"])
                        for item in spec["labels"]
                        if item["id"] not in liked
                    }
                    pair = (ndcg_at(ranked, grades), average_precision(ranked, grades))
                    pairs.append(pair)
                    if per_profile:
                        print(
                            f"  {set_name:<8} {spec['name']:<28} {mode:<9} "
                            f"nDCG@10 {pair[0]:.3f}  AP {pair[1]:.3f}"
                        )
        return out


@contextmanager
def patched(harness: SentenceHarness, variant: Variant) -> Iterator[None]:
    """``semantic._cosines`` and ``semantic._liked_part`` replaced by the variant's."""
    saved = sem._cosines, sem._liked_part
    sem._cosines = _cosines_of(harness, variant)  # type: ignore[assignment]
    if variant.liked > 0:
        sem._liked_part = _liked_part_of(harness, variant)
    try:
        yield
    finally:
        sem._cosines, sem._liked_part = saved


def _calib(values: np.ndarray, has: np.ndarray) -> np.ndarray:
    """Median-to-best calibration of each column over the rows that have a vector (no
    liked rows are skipped: the variant's own mixing step only)."""
    v = values if values.ndim == 2 else values[:, None]
    pool = v[has]
    zero = np.quantile(pool, 0.5, axis=0)
    top = pool.max(axis=0)
    span = np.where(top > zero, top - zero, 1.0)
    out = np.asarray(np.clip((v - zero) / span, 0.0, 1.0), dtype=np.float64)
    return out if values.ndim == 2 else out[:, 0]


def _cosines_of(
    harness: SentenceHarness, variant: Variant
) -> Callable[[np.ndarray, np.ndarray, Any], np.ndarray]:
    chunk_vectors = harness.chunks(variant.scheme) if variant.chunk > 0 else None

    def cosines(vectors: np.ndarray, queries: np.ndarray, titles: Any) -> np.ndarray:
        full = np.asarray(vectors @ queries, dtype=np.float64)
        parts: list[tuple[float, np.ndarray, np.ndarray]] = []
        if variant.title > 0:
            tv = harness.title_vectors
            parts.append(
                (variant.title, np.asarray(tv.vectors @ queries, dtype=np.float64), tv.has)
            )
        if chunk_vectors is not None and (queries.ndim == 2 or not variant.each_only):
            parts.append(
                (variant.chunk, chunk_vectors.cosines(queries, variant.how), chunk_vectors.has)
            )
        if variant.calibrate:
            full = _calib(full, harness.has)
            parts = [(w, _calib(v, has), has) for w, v, has in parts]
        out = full.copy()
        for weight, values, has in parts:
            has_col = has if out.ndim == 1 else has[:, None]
            out = np.where(has_col, out + weight * (values - full), out)
        return out

    return cosines


def _liked_part_of(harness: SentenceHarness, variant: Variant) -> Callable[..., np.ndarray | None]:
    chunk_vectors = harness.chunks(variant.scheme)

    def liked_part(
        vectors: np.ndarray, liked: Sequence[int], *, have: np.ndarray, skip: np.ndarray
    ) -> np.ndarray | None:
        centre = sem.liked_centroid(vectors, liked)
        if centre is None:
            return None
        cosine = np.asarray(vectors @ centre, dtype=np.float64)
        by_chunk = chunk_vectors.cosines(centre, variant.how)
        mixed = np.where(
            chunk_vectors.has, (1 - variant.liked) * cosine + variant.liked * by_chunk, cosine
        )
        near = sem._calibrated(mixed, have=have, skip=skip)
        rows, seeds = graph_rows(cosine, have, liked, limit=GRAPH_CANDIDATES)
        spread = np.zeros(len(vectors))
        spread[rows] = label_spreading(vectors[rows], seeds)
        spread = sem._calibrated(spread, have=have, skip=skip, baseline=False)
        return (1.0 - sem.GRAPH_WEIGHT) * near + sem.GRAPH_WEIGHT * spread

    return liked_part


def variants(group: str, quick: bool) -> list[Variant]:
    out = [Variant("same-as-product (title 0.3, no chunks)")]
    if group == "more":
        for scheme in ("s1", "s2"):
            for how in ("max", "top2"):
                for chunk in (0.2, 0.3, 0.5):
                    name = f"{scheme} {how} chunk {chunk}"
                    out.append(Variant(f"{name} + title 0.3 calib", scheme, how, 0.3, chunk, True))
                    out.append(
                        Variant(
                            f"{name} + title 0.3 each-kw only",
                            scheme,
                            how,
                            0.3,
                            chunk,
                            each_only=True,
                        )
                    )
                    out.append(Variant(f"{name} + title 0.2", scheme, how, 0.2, chunk))
            for liked in (0.2, 0.3, 0.5):
                out.append(Variant(f"{scheme} max liked {liked}", scheme, "max", liked=liked))
                out.append(Variant(f"{scheme} top2 liked {liked}", scheme, "top2", liked=liked))
        out.append(Variant("s1 mean chunk 0.3 + title 0.3", "s1", "mean", 0.3, 0.3))
        return out
    if group == "calib":  # around the calibrated mix, with its control (no chunks)
        out.append(Variant("title 0.3 calib, no chunks", calibrate=True))
        for scheme, how in (("s1", "max"), ("s1", "top2"), ("s2", "top2")):
            for chunk in (0.1, 0.15, 0.2, 0.25, 0.3):
                name = f"{scheme} {how} chunk {chunk} + title 0.3 calib"
                out.append(Variant(name, scheme, how, 0.3, chunk, True))
        return out
    schemes = ("s1", "s2") if quick else ("s1", "s2", "w2", "t1")
    for scheme in schemes:
        for how in ("max", "top2"):
            for chunk in (0.2, 0.3, 0.4, 0.5):
                out.append(
                    Variant(f"{scheme} {how} chunk {chunk} + title 0.3", scheme, how, 0.3, chunk)
                )
                out.append(
                    Variant(f"{scheme} {how} chunk {chunk}, no title", scheme, how, 0.0, chunk)
                )
    return out


def mean(pairs: list[tuple[float, float]]) -> str:
    return f"{np.mean([p[0] for p in pairs]):.3f}/{np.mean([p[1] for p in pairs]):.3f}"


def paired(
    scores: dict[str, dict[str, list[tuple[float, float]]]],
    base: dict[str, dict[str, list[tuple[float, float]]]],
) -> str:
    """Per-profile nDCG@10 change against ``base`` over the 20 tuning profiles: mean and
    standard error, and how many profiles rose / fell by more than 0.001."""
    cells = []
    for mode in ("full", "keywords"):
        diff = np.array(
            [
                a[0] - b[0]
                for s in TUNING
                for a, b in zip(scores[mode][s], base[mode][s], strict=True)
            ]
        )
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        cells.append(
            f"{mode[:4]} {diff.mean():+.3f}±{se:.3f} "
            f"up {int((diff > 0.001).sum())} down {int((diff < -0.001).sum())}"
        )
    return f"{'':<40} paired vs product, 20 profiles: " + " | ".join(cells)


def report(name: str, scores: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    cells = []
    for mode in MODES:
        by_set = scores[mode]
        tuning = [p for s in TUNING for p in by_set[s]]
        cells.append(
            f"{mode[:4]} {mean(by_set['devset'])} {mean(by_set['devset2'])} "
            f"[20 {mean(tuning)}] (d3 {mean(by_set['devset3'])})"
        )
    return f"{name:<40} " + " | ".join(cells)


def cost(papers: int, per_paper: float, texts: int, repeats: int = 3) -> None:
    """Scoring cost of chunk vectors on ``papers`` stand-in papers (random unit vectors,
    ``per_paper`` chunks a paper on average, flat layout): the (chunks x texts) product and
    the per-paper max, against the one-vector-a-paper product; best of ``repeats``."""
    rng = np.random.default_rng(0)
    counts = rng.poisson(per_paper - 1, papers) + 1
    total = int(counts.sum())
    flat = rng.standard_normal((total, 384), dtype=np.float32)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    one = flat[np.cumsum(counts) - counts].copy()
    queries = rng.standard_normal((384, texts), dtype=np.float32)
    starts = np.cumsum(counts) - counts

    def timed(work: Callable[[], object]) -> tuple[float, float]:
        best = (float("inf"), float("inf"))
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            best = min(best, (time.perf_counter() - wall, time.process_time() - cpu))
        return best

    base = timed(lambda: one @ queries)
    chunked = timed(lambda: np.maximum.reduceat(flat @ queries, starts, axis=0))
    print(
        f"# {papers} papers, {total} chunks ({total * 384 * 4 / 1e9:.2f} GB float32), "
        f"{texts} profile texts: one vector a paper {base[0]:.3f} s wall / {base[1]:.3f} s CPU; "
        f"chunks + max {chunked[0]:.3f} s / {chunked[1]:.3f} s (best of {repeats})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-sentences"))
    parser.add_argument("--quick", action="store_true", help="s1 and s2 schemes only")
    parser.add_argument("--only", action="append", help="variant names containing this")
    parser.add_argument("--per-profile", action="store_true")
    parser.add_argument("--paired", action="store_true", help="per-profile change vs product")
    parser.add_argument(
        "--cost", type=int, metavar="PAPERS", help="only time scoring on stand-in vectors"
    )
    parser.add_argument("--group", choices=("main", "more", "calib"), default="main")
    opts = parser.parse_args()
    if opts.cost:
        cost(opts.cost, per_paper=9.5, texts=9)
        return
    harness = SentenceHarness(opts.workdir)
    print("nDCG@10/MAP per mode: devset devset2 [all 20] (devset3 held out, check only)")
    base = harness.score(None, per_profile=opts.per_profile)
    print(report("product (semantic=None)", base))
    for variant in variants(opts.group, opts.quick):
        if opts.only and not any(part in variant.name for part in opts.only):
            continue
        scores = harness.score(variant, per_profile=opts.per_profile)
        print(report(variant.name, scores))
        if opts.paired:
            print(paired(scores, base))


if __name__ == "__main__":
    main()
