"""Within-keyword coordination of a keyword's words found apart (issue #3), swept in process.

A multi-word keyword whose phrase is absent gives each of its words found a share of its
weight (the back-off, ``query._keyword_features``). Hypothesis: a paper holding one word
of ``implicit bias`` is weaker evidence than one holding both apart, so the back-off should
depend on how many of the keyword's words a paper holds. A variant is applied to each
keyword's back-off rows of the feature matrix before they are summed (``scorer._proximity``
is wrapped: it receives that matrix first); ``digestbot/`` is not changed. Its settings:

- ``coverage=p``: the words' evidence x (words found / words) ^ p;
- ``lone=f``: x f where only one of the keyword's words is found (0: at least two);
- ``idf=q``: a lone word x (its idf / the keyword's rarest word's idf) ^ q;
- ``rarest=1``: a lone word counts only if it is the keyword's rarest;
- ``head=0``: the keyword's last word (its head noun: ``attention`` in ``linear
  attention``, ``bias`` in ``implicit bias``) found alone is spared ``lone``;
- ``semonly=1``: the lexical run keeps main's back-off (coordination with embeddings only);

and any module constant as in ``relevance_sweep.py`` (``scorer.SEMANTIC_SCATTER=0.75``,
``query.SCATTER_WEIGHT=1.5``). Tuning sets only (devset, devset2), the semantic run (the
graded configuration) and the lexical run. Per cell: the mean change in nDCG@10 over main
± its standard error / the mean change in MAP, profiles up and down; ``PASS`` marks a
variant whose semantic nDCG@10 rises on both sets in full and keyword modes, whose MAP
falls by at most 0.005 in those cells, and whose lexical nDCG@10 falls by at most 0.005::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_coordination.py            # the grid
    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_coordination.py 'lone=0.5 head=0'
    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_coordination.py --per-profile 'lone=0.5'
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.relevance_fusion import Harness, Result, parse
from digestbot.ranking import scorer
from digestbot.ranking.lexical import LexicalIndex
from digestbot.ranking.query import Feature
from digestbot.ranking.text import column

SETS = ("devset", "devset2")
MODES = ("full", "keywords", "like")
OWN = ("coverage", "lone", "idf", "rarest", "head", "semonly")

GRID = [
    *(f"coverage={p}" for p in (0.5, 1, 2)),
    *(f"lone={f}" for f in (0, 0.25, 0.5, 0.75)),
    *(f"idf={q}" for q in (1, 2, 4)),
    "rarest=1",
    "rarest=1 lone=0.5",
    *(
        f"lone={f} scorer.SEMANTIC_SCATTER={s} query.SCATTER_WEIGHT={w}"
        for f in (0, 0.25, 0.5)
        for s, w in ((0.75, 1.0), (1.0, 1.0), (0.5, 1.5), (0.75, 1.5))
    ),
    *(f"lone={f} semonly=1" for f in (0, 0.25, 0.5)),
    *(f"lone={f} semonly=1 scorer.SEMANTIC_SCATTER=0.75" for f in (0, 0.25, 0.5)),
    *(f"lone={f} head=0" for f in (0, 0.25, 0.5, 0.75)),
]


def coordinate(index: LexicalIndex, features: Sequence[Feature], raw: Any, **opts: float) -> None:
    """Scale each multi-word keyword's back-off rows of ``raw`` (features x papers) in place
    by how many of the keyword's words each paper holds."""
    coverage, lone_factor = opts.get("coverage", 0.0), opts.get("lone", 1.0)
    idf_power, rarest = opts.get("idf", 0.0), bool(opts.get("rarest", 0))
    spare_head = not bool(opts.get("head", 1))
    groups: dict[Any, list[int]] = {}
    for j, feature in enumerate(features):
        if feature.unless and feature.kind == "keyword":
            groups.setdefault(feature.unless, []).append(j)  # one keyword's words, in order
    n_docs = max(index.n_live, 1)
    for js in groups.values():
        picked = np.asarray(js, dtype=np.int64)
        block = raw[picked]
        found = (block > 0).sum(axis=0)
        factor = np.ones(block.shape[1])
        if coverage:
            factor *= (found / len(js)) ** coverage
        lone = found == 1
        factor[lone] *= lone_factor
        scaled = block * factor
        if idf_power or rarest:
            df = [
                float(index.document_frequency(np.asarray([column(t) for t in alt])).min())
                for alt in (features[j].alternatives[0] for j in js)
            ]
            idf = np.log((n_docs + 1) / (np.asarray(df) + 0.5))
            relative = idf / max(float(idf.max()), 1e-12)
            each = relative**idf_power * (relative >= 1 - 1e-9 if rarest else 1.0)
            scaled[:, lone] *= each[:, None]
        if spare_head:
            head = lone & (block[-1] > 0)
            scaled[-1, head] = block[-1, head]
        raw[picked] = scaled


def wrapped(opts: dict[str, float]) -> Callable[..., None]:
    original = scorer._proximity

    def proximity(
        index: LexicalIndex, features: Sequence[Feature], raw: Any, summed: Any, **kw: Any
    ) -> None:
        coordinate(index, features, raw, **opts)
        summed[:] = raw.sum(axis=0) if len(features) else 0.0
        original(index, features, raw, summed, **kw)

    return proximity


def overrides(variant: str, *, lexical: bool) -> dict[str, Any]:
    parsed = parse(variant)
    opts = {k: float(v) for k, v in parsed.items() if k in OWN}
    out = {k: v for k, v in parsed.items() if k not in OWN}
    if opts and not (lexical and opts.get("semonly")):
        out["scorer._proximity"] = wrapped(opts)
    return out


def cell(
    result: Result, base: Result, key: tuple[str, str]
) -> tuple[float, float, float, int, int]:
    """Mean nDCG@10 change, its standard error, mean MAP change, profiles up, down."""
    d = np.asarray([a[0] - b[0] for a, b in zip(result[key], base[key], strict=True)])
    m = np.asarray([a[1] - b[1] for a, b in zip(result[key], base[key], strict=True)])
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0
    return float(d.mean()), se, float(m.mean()), int((d > 1e-9).sum()), int((d < -1e-9).sum())


def line(label: str, sem: Result, lex: Result, base: tuple[Result, Result]) -> str:
    parts = []
    passes = True
    for run, result, reference in (("sem", sem, base[0]), ("lex", lex, base[1])):
        for mode in ("full", "keywords"):
            cells = []
            for s in SETS:
                dn, se, dm, up, down = cell(result, reference, (s, mode))
                cells.append(f"{dn:+.3f}±{se:.3f}/{dm:+.3f} {up}↑{down}↓")
                if run == "sem" and (dn <= 0 or dm < -0.005):
                    passes = False
                if run == "lex" and dn < -0.005:
                    passes = False
            parts.append(f"{run} {mode[:4]} " + ", ".join(cells))
    flag = "PASS" if passes else "    "
    return f"{flag} {label}\n      " + "\n      ".join(parts)


def absolute(label: str, result: Result) -> str:
    out = []
    for mode in MODES:
        cells = [
            f"{np.mean([p[0] for p in result[(s, mode)]]):.3f}/"
            f"{np.mean([p[1] for p in result[(s, mode)]]):.3f}"
            for s in SETS
        ]
        out.append(f"{mode[:4]} " + " ".join(cells))
    return f"{label:<10} " + " | ".join(out)


def main() -> None:
    harness = Harness(Path("/tmp/digestbot-coordination"), held_out=False)
    started = time.perf_counter()
    base_sem = harness.run(sets=SETS)
    base_lex = harness.run(lexical=True, sets=SETS)
    print(absolute("main sem", base_sem))
    print(absolute("main lex", base_lex))
    print(f"  ({time.perf_counter() - started:.1f} s for both runs)", flush=True)
    args = sys.argv[1:]
    if args[:1] == ["--per-profile"]:
        print("main")
        harness.run(sets=SETS, per_profile=True)
        print(args[1])
        harness.run(overrides(args[1], lexical=False), sets=SETS, per_profile=True)
        return
    for variant in args or GRID:
        sem = harness.run(overrides(variant, lexical=False), sets=SETS)
        lex = harness.run(overrides(variant, lexical=True), lexical=True, sets=SETS)
        print(line(variant, sem, lex, (base_sem, base_lex)), flush=True)
        print("      " + absolute("sem", sem) + "\n      " + absolute("lex", lex), flush=True)
    harness.store.close()


if __name__ == "__main__":
    main()
