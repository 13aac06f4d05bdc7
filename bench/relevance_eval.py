"""Score the ranker on the development sets in bench/relevance/ (devset.yaml, devset2.yaml).

Builds a fresh SQLite store from seeds/, writes a config with every dev profile in
three modes (full: description + keywords; keywords only; like only: the two
liked papers' exact titles), runs ``digestbot rank --profile NAME --json`` for
each and prints nDCG@10 and MAP (relevant = grade >= 1) averaged over profiles,
per set and over all sets. In like mode the two liked papers are removed from the
ranking before scoring. The lexical run sets ``ranking.embedding_model: null``;
``--semantic`` adds a run with embeddings (``auto``: the packaged MiniLM-L6).
``--held-out`` adds the two held-out sets (devset3.yaml, devset4.yaml: 16 profiles never
tuned on) and a ``held-out`` column, their mean over the 16 profiles.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/relevance_eval.py [--semantic] [--per-profile]
        [--devset PATH ...] [--held-out] [--embedding-model MODEL] [--no-lexical] [--subprocess]
        [--acronyms {shipped,static,mined,none}]

``--acronyms`` (in-process only) ranks with the static table ``text.ACRONYMS`` and the
acronyms mined from the papers (``shipped``), only one of them, or neither.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench  # noqa: F401  (this checkout's code, in children too: bench/__init__.py)

REPO = Path(__file__).resolve().parent.parent
DEVSET = REPO / "bench" / "relevance" / "devset.yaml"
DEVSET2 = REPO / "bench" / "relevance" / "devset2.yaml"
DEVSET3 = REPO / "bench" / "relevance" / "devset3.yaml"  # held out: checked, never tuned on
DEVSET4 = REPO / "bench" / "relevance" / "devset4.yaml"  # held out too (a second check)
HELD_OUT = (DEVSET3, DEVSET4)
MODES = ("full", "keywords", "like")
NOW = "2026-11-23T09:00:00Z"


def ndcg_at(ranked: list[str], grades: dict[str, int], k: int = 10) -> float:
    dcg = sum(grades.get(pid, 0) / math.log2(i + 2) for i, pid in enumerate(ranked[:k]))
    ideal = sorted(grades.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def average_precision(ranked: list[str], grades: dict[str, int]) -> float:
    relevant = {pid for pid, g in grades.items() if g > 0}
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, pid in enumerate(ranked):
        if pid in relevant:
            hits += 1
            total += hits / (i + 1)
    return total / len(relevant)


def profile_config(spec: dict[str, Any], mode: str) -> dict[str, Any]:
    name = f"{spec['name']}--{mode}"
    if mode == "full":
        return {"name": name, "description": spec["description"], "keywords": spec["keywords"]}
    if mode == "keywords":
        return {"name": name, "keywords": spec["keywords"]}
    return {"name": name, "like": spec["like"]}


def run_rank(workdir: Path, profile: str, *, use_subprocess: bool) -> list[dict[str, Any]]:
    args = ["--config", str(workdir / "config.yaml"), "--now", NOW, "rank"]
    args += ["--profile", profile, "--json"]
    if use_subprocess:
        exe = Path(sys.executable).parent / "digestbot"
        out = subprocess.run([str(exe), *args], check=True, capture_output=True, text=True)
        return list(json.loads(out.stdout))
    from click.testing import CliRunner

    from digestbot.cli import main

    result = CliRunner().invoke(main, args, catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(result.output)
    return list(json.loads(result.stdout))


@contextmanager
def ranked_store(
    specs: list[dict[str, Any]], *, embedding_model: str | None, modes: tuple[str, ...] = MODES
) -> Iterator[Path]:
    """A scratch folder holding seeds/, a config with every dev profile in ``modes``, and
    a store the drops were ingested into; yields the folder (``run_rank`` takes it)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "seeds", work / "seeds")
        config: dict[str, Any] = {
            "database_url": "sqlite:///data/bench.sqlite3",
            "drops": {"path": "seeds"},
            "profiles": [profile_config(s, m) for s in specs for m in modes],
            "ranking": {"embedding_model": embedding_model},
        }
        (work / "config.yaml").write_text(yaml.safe_dump(config), "utf-8")
        subprocess.run(
            [
                str(Path(sys.executable).parent / "digestbot"),
                "--config",
                str(work / "config.yaml"),
                "--now",
                NOW,
                "ingest",
                "--json",
            ],
            check=True,
            capture_output=True,
        )
        yield work


def scored_ids(
    spec: dict[str, Any], mode: str, ranked: list[dict[str, Any]], liked: Collection[str] = ()
) -> tuple[list[str], dict[str, int]]:
    """The ranked ids and the profile's grades as scored: in like mode without the liked
    papers themselves (``liked``: their ids; else those of ``ranked`` titled as liked)."""
    ids = [item["id"] for item in ranked]
    grades = {item["id"]: int(item["grade"]) for item in spec["labels"]}
    if mode == "like":
        gone = set(liked) or {item["id"] for item in ranked if item["title"] in spec["like"]}
        ids = [pid for pid in ids if pid not in gone]
        for pid in gone:
            grades.pop(pid, None)
    return ids, grades


def judged(
    spec: dict[str, Any], mode: str, ranked: list[str], liked: Collection[str] = ()
) -> tuple[float, float]:
    """nDCG@10 and AP of ranked paper ids against the profile's grades (``scored_ids``)."""
    ids, grades = scored_ids(spec, mode, [{"id": pid, "title": None} for pid in ranked], liked)
    return ndcg_at(ids, grades), average_precision(ids, grades)


def evaluate(
    specs: list[dict[str, Any]],
    *,
    embedding_model: str | None,
    use_subprocess: bool,
    per_profile: bool,
    modes: tuple[str, ...] = MODES,
) -> dict[str, list[tuple[float, float]]]:
    """(nDCG@10, AP) per profile for each mode, in the order of ``specs``."""
    scores: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    with ranked_store(specs, embedding_model=embedding_model, modes=modes) as work:
        for spec in specs:
            for mode in modes:
                ranked = run_rank(work, f"{spec['name']}--{mode}", use_subprocess=use_subprocess)
                ids, grades = scored_ids(spec, mode, ranked)
                pair = (ndcg_at(ids, grades), average_precision(ids, grades))
                scores[mode].append(pair)
                if per_profile:
                    print(f"  {spec['name']:<28} {mode:<9} nDCG@10 {pair[0]:.3f}  AP {pair[1]:.3f}")
    return scores


def mean_pair(pairs: list[tuple[float, float]]) -> str:
    if not pairs:
        return "-"
    ndcg = sum(p[0] for p in pairs) / len(pairs)
    ap = sum(p[1] for p in pairs) / len(pairs)
    return f"{ndcg:.3f} / {ap:.3f}"


def use_acronyms(*, static: bool, mined: bool) -> None:
    """Rank (in this process) without the static acronym table, or without the mined one."""
    from digestbot.ranking import service, text

    if not static:
        text.ACRONYMS.clear()
        text._ACRONYM_KEYS.clear()
    if not mined:
        service.mined_acronyms = lambda store, profile: ()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-profile", action="store_true")
    parser.add_argument("--subprocess", action="store_true", help="run the installed CLI")
    parser.add_argument(
        "--devset",
        type=Path,
        action="append",
        help=f"a development set (repeatable; default: {DEVSET.name} and {DEVSET2.name})",
    )
    parser.add_argument(
        "--embedding-model",
        help="ranking.embedding_model (hub name, local folder or auto) for the semantic run",
    )
    parser.add_argument(
        "--semantic",
        action="store_true",
        help="also rank with embeddings (--embedding-model, default auto: the packaged MiniLM)",
    )
    parser.add_argument("--no-lexical", action="store_true", help="skip the lexical run")
    parser.add_argument(
        "--held-out",
        action="store_true",
        help=f"also score {DEVSET3.name} and {DEVSET4.name} (held out: to check, never to tune on)",
    )
    parser.add_argument(
        "--mode", choices=MODES, action="append", help="score only this mode (repeatable)"
    )
    parser.add_argument(
        "--acronyms",
        choices=("shipped", "static", "mined", "none"),
        default="shipped",
        help="which acronyms expand: the static table and the mined ones (shipped), one, none",
    )
    opts = parser.parse_args()
    if opts.acronyms != "shipped":
        if opts.subprocess:
            parser.error("--acronyms needs the in-process run")
        use_acronyms(static=opts.acronyms in ("static",), mined=opts.acronyms in ("mined",))
    paths: list[Path] = opts.devset or [DEVSET, DEVSET2]
    if opts.held_out:
        paths += [path for path in HELD_OUT if path not in paths]
    sets = [(path.stem, yaml.safe_load(path.read_text("utf-8"))["profiles"]) for path in paths]
    held_names = {path.stem for path in HELD_OUT}
    held_column = opts.held_out and sum(name in held_names for name, _ in sets) > 1
    specs = [spec for _, set_specs in sets for spec in set_specs]
    modes: tuple[str, ...] = tuple(opts.mode) if opts.mode else MODES
    runs: list[tuple[str, str | None]] = []
    if not opts.no_lexical:
        runs.append(("lexical", None))
    if opts.semantic or opts.embedding_model:
        os.environ["DIGESTBOT_AUTO_EMBEDDINGS"] = "1"
        runs.append(("semantic", opts.embedding_model or "auto"))
    columns = [name for name, _ in sets] + (["all"] if len(sets) > 1 else [])
    columns += ["held-out"] if held_column else []
    header = f"{'run':<9} {'mode':<9} " + " ".join(f"{c:>15}" for c in columns)
    lines = [header, "-" * len(header)]
    for run_name, model in runs:
        scores = evaluate(
            specs,
            embedding_model=model,
            use_subprocess=opts.subprocess,
            per_profile=opts.per_profile,
            modes=modes,
        )
        for mode in modes:
            cells: list[str] = []
            held: list[tuple[float, float]] = []
            start = 0
            for name, set_specs in sets:
                pairs = scores[mode][start : start + len(set_specs)]
                cells.append(mean_pair(pairs))
                held += pairs if name in held_names else []
                start += len(set_specs)
            if len(sets) > 1:
                cells.append(mean_pair(scores[mode]))
            if held_column:
                cells.append(mean_pair(held))
            lines.append(f"{run_name:<9} {mode:<9} " + " ".join(f"{c:>15}" for c in cells))
    print(f"nDCG@10 / MAP, averaged over profiles ({len(specs)} in all)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
