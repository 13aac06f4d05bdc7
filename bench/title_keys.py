"""Title keys of non-ASCII titles (``ids.normalize_title_slow``): 100,000 Cyrillic titles.

    .venv/bin/python bench/title_keys.py

ASCII titles take a translate table; the others the reference definition, whose punctuation
fold keeps the spelling marks of Brahmic and Thai-family scripts. Prints the best of 3.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digestbot.ids import normalize_title_slow

WORDS = [
    "Нейронные",
    "сети",
    "для",
    "обработки",
    "естественного",
    "языка",
    "—",
    "обзор:",
    "методы,",
    "задачи",
    "и",
    "перспективы",
    "(2024)",
]


def main() -> None:
    rng = random.Random(1)
    titles = [" ".join(rng.sample(WORDS, 9)) + f" {i}" for i in range(100_000)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for title in titles:
            normalize_title_slow(title)
        best = min(best, time.perf_counter() - start)
    print(f"100,000 Cyrillic title keys: {best:.3f} s ({best * 10:.1f} µs each)")


if __name__ == "__main__":
    main()
