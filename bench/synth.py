"""Synthetic drops generated from the samples, for benchmarks (not tests).

``python bench/synth.py OUT_DIR --papers 100000 --per-file 1000`` writes drop files in the
samples' format: titles and abstracts recombined from the 186 sample papers, each
title made unique, meta blocks with authors/organisation, dates and upvotes.
"""

from __future__ import annotations

import argparse
import random
from datetime import datetime
from pathlib import Path

from digestbot.sources.drops import read_drop

HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\nNov 10\n\n"
)
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def sample_papers(seeds: Path) -> list[tuple[str, str]]:
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(seeds.glob("*.txt")):
        for paper in read_drop(path).papers:
            out.setdefault(paper.title_key, (paper.title, paper.abstract))
    return list(out.values())


def synth_entries(n: int, *, seed: int = 7, seeds: Path = Path("seeds")) -> list[str]:
    rng = random.Random(seed)
    base = sample_papers(seeds)
    sentences = [s.strip() + "." for _, a in base for s in a.split(". ") if len(s) > 20]
    entries = []
    for i in range(n):
        title, abstract = base[i % len(base)]
        words = title.split()
        rng.shuffle(words)
        title = f"{' '.join(words)} {i}"
        abstract = " ".join(rng.sample(sentences, 8))
        meta = f"  • {rng.randint(1, 30)} authors" if i % 50 else "kyutai Kyutai"
        date = f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"
        if i % 3:
            date += f", {rng.randint(2016, 2025)}"
        if i % 4:
            date += f" {rng.randint(1, 300)}"
        entries.append(f"{title}\n\n{abstract}\n\n{meta}\n·\n{date}\n")
    return entries


def write_drops(out: Path, *, papers: int, per_file: int, seed: int = 7) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    entries = synth_entries(papers, seed=seed)
    paths = []
    for start in range(0, papers, per_file):
        path = out / f"synth_{start // per_file:05d}.txt"
        path.write_text(HEADER + "\n".join(entries[start : start + per_file]), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--per-file", type=int, default=1_000)
    args = parser.parse_args()
    t0 = datetime.now()
    files = write_drops(args.out, papers=args.papers, per_file=args.per_file)
    print(f"wrote {len(files)} files in {(datetime.now() - t0).total_seconds():.1f}s")
