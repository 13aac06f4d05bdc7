"""The one-time re-key of an older database (``store.aliases.refold_title_keys``) on 100,000+
papers: the time an older SQLite store takes to open (the write lock is held meanwhile).

    DIGESTBOT_AUTO_EMBEDDINGS=0 .venv/bin/python bench/rekey.py [--runs 5] [--mixed]
        [--store /tmp/digestbot-speed/data/speed-100000.sqlite3] [--workdir /tmp/digestbot-rekey]

The store of ``bench/rank.py`` (107,000 papers; made by ``python -m bench.rank`` if missing)
is copied (SQLite backup) and made older: no ``paper_aliases`` table, as a digestbot before
aliases left it, so the next open makes it and re-keys. ``--mixed``: first 1% of the titles
rewritten in TeX maths and 1% in Thai, both stored under the key an older digestbot made
(so that the re-key has work), and 10% in Cyrillic (read by nothing, re-keyed never).

Per run, on a fresh copy: ``SqlStore.open`` (wall, CPU user+sys) and, on another fresh copy,
``refold_title_keys`` alone in one transaction; best of ``--runs``. Then a fingerprint of
the result (every paper's key and title id, every alias) to compare before/after a change.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from digestbot.store import SqlStore
from digestbot.store.aliases import refold_title_keys

TEX = "$\\alpha$-Divergence Bridges for $O(n^2)$ Sampling {i}"
TEX_OLD = "alpha divergence bridges for o n 2 sampling {i}"
THAI = "การเรียนรู้ของเครื่อง {i}"
THAI_OLD = "การเร ยนร ของเคร อง {i}"
CYRILLIC = "Нейронные сети для обработки языка {i}"


def _tid(key: str) -> str:
    return "t-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def older_template(source: Path, target: Path, *, mixed: bool) -> None:
    """A copy of ``source`` without ``paper_aliases`` (and, ``mixed``, its titles varied)."""
    target.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    src.backup(dst)
    src.close()
    with dst:
        dst.execute("DROP TABLE IF EXISTS paper_aliases")
        if mixed:
            pks = [pk for (pk,) in dst.execute("SELECT pk FROM papers ORDER BY pk")]
            rows = []
            for n, pk in enumerate(pks):
                if n % 100 == 0:
                    title, key = TEX.format(i=n), TEX_OLD.format(i=n)
                elif n % 100 == 1:
                    title, key = THAI.format(i=n), THAI_OLD.format(i=n)
                elif n % 10 == 5:
                    title = CYRILLIC.format(i=n)
                    key = title.lower()
                else:
                    continue
                rows.append((title, key, _tid(key), pk))
            dst.executemany(
                "UPDATE papers SET title = ?, title_key = ?, tid = ? WHERE pk = ?", rows
            )
    dst.execute("PRAGMA journal_mode=DELETE")
    dst.close()


def fresh_copy(template: Path, work: Path) -> Path:
    db = work / "older.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(template, db)
    return db


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def fingerprint(db: Path) -> tuple[int, str]:
    """Aliases count, and a hash of every (pk, title_key, tid) and alias."""
    conn = sqlite3.connect(db)
    digest = hashlib.sha256()
    for row in conn.execute("SELECT pk, title_key, tid FROM papers ORDER BY pk"):
        digest.update(repr(row).encode())
    aliases = conn.execute("SELECT tid, paper_pk FROM paper_aliases ORDER BY tid").fetchall()
    digest.update(repr(aliases).encode())
    conn.close()
    return len(aliases), digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, default=Path("/tmp/digestbot-speed/data/speed-100000.sqlite3")
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-rekey"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mixed", action="store_true", help="TeX, Thai and Cyrillic titles too")
    args = parser.parse_args()
    if not args.store.exists():
        raise SystemExit(f"{args.store}: missing (make it with: python -m bench.rank)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    template = args.workdir / ("template-mixed.sqlite3" if args.mixed else "template.sqlite3")
    older_template(args.store, template, mixed=args.mixed)
    papers = sqlite3.connect(template).execute("SELECT count(*) FROM papers").fetchone()[0]

    opens: list[tuple[float, float]] = []
    refolds: list[tuple[float, float, int]] = []
    result = None
    for _ in range(args.runs):
        db = fresh_copy(template, args.workdir)
        start, start_cpu = time.perf_counter(), cpu()
        store = SqlStore.open(f"sqlite:///{db}")
        opens.append((time.perf_counter() - start, cpu() - start_cpu))
        store.close()
        result = fingerprint(db)

        db = fresh_copy(template, args.workdir)
        engine = sa.create_engine(f"sqlite:///{db}")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE paper_aliases (tid VARCHAR(16) PRIMARY KEY, "
                "paper_pk INTEGER NOT NULL REFERENCES papers (pk))"
            )
            start, start_cpu = time.perf_counter(), cpu()
            changed = refold_title_keys(conn)
            refolds.append((time.perf_counter() - start, cpu() - start_cpu, changed))
        engine.dispose()

    wall, used = min(opens)
    rwall, rused, changed = min(refolds)
    print(f"{papers:,} papers, older store{' (mixed titles)' if args.mixed else ''}:")
    print(f"  open (re-key included): best {wall:.3f} s wall, {used:.3f} s CPU")
    print(
        f"  refold_title_keys alone: best {rwall:.3f} s wall, {rused:.3f} s CPU; {changed} re-keyed"
    )
    if result is not None:
        print(f"  result: {result[0]} aliases, fingerprint {result[1]}")


if __name__ == "__main__":
    main()
