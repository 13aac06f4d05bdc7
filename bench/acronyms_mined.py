"""What the acronym miner finds in the sample papers (``ranking.acronyms``, ``store.acronyms``).

    .venv/bin/python bench/acronyms_mined.py [--all]

Ingests seeds/ into a scratch SQLite store and prints: papers, papers defining an
acronym, distinct (short form, long form) pairs counted, the pairs a query expands
(``trusted``: in >= 2 papers, one long form >= 2/3 of its short form's papers), those
left to the static table ``ACRONYMS``, and the short forms refused as ambiguous.
``--all`` lists every pair counted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.ranking.acronyms import Counted, ambiguous, trusted
from digestbot.ranking.text import static_acronym_keys
from digestbot.store import SqlStore
from digestbot.store.acronyms import acronym_definitions

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list every pair counted")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore.open(f"sqlite:///{tmp}/db.sqlite3")
        ingest_paths(store, (), files=list_drop_files((REPO / "seeds",)), now=NOW)
        table = acronym_definitions
        with store.transaction() as conn:
            rows = [Counted(*row) for row in conn.execute(sa.select(*table.c))]
        papers = store.count_papers()
        store.close()
    static = static_acronym_keys()
    kept = trusted(rows)
    print(f"{papers} papers; {len(rows)} (short form, long form) pairs counted")
    print(f"{sum(r.papers for r in rows)} definitions in all")
    print(f"\ntrusted ({len(kept)}; * = the static table has it and wins):")
    for short, items in sorted(kept.items()):
        mark = (
            "*" if short in static or any({i.long_key, i.spelling} & static for i in items) else " "
        )
        forms = " / ".join(f"{i.long} ({i.papers})" for i in items)
        print(f"  {mark} {items[0].short:<10} {forms}")
    print("\nrefused as ambiguous:")
    for short in ambiguous(rows):
        forms = ", ".join(f"{r.long} ({r.papers})" for r in rows if r.short_key == short)
        print(f"    {short:<10} {forms}")
    if opts.all:
        print("\nevery pair:")
        for r in sorted(rows, key=lambda r: (-r.papers, r.short_key, r.long_key)):
            print(f"    {r.papers:>3} {r.short:<10} {r.long}")


if __name__ == "__main__":
    main()
