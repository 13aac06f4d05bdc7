"""The process's vectors by row (``vector_cache``): after the first rank only the vectors
written since are read, and a rank never sees a vector the store no longer holds. Real
SQLite files (and PostgreSQL where a server is given); stand-in vectors, no model."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.ranking.lexical import LexicalIndex
from digestbot.ranking.semantic import (
    Embedder,
    RowVectors,
    query_texts,
    ready_vectors,
    row_vectors,
)
from digestbot.ranking.semantic import semantic_scores as score_semantic
from digestbot.ranking.service import open_index
from digestbot.ranking.vector_cache import VECTORS, VectorCache
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock
from digestbot.store.embeddings import (
    count_missing_embeddings,
    embedding_changes,
    missing_embeddings,
    paper_embeddings,
    record_embeddings,
    record_query_vector,
    text_digest,
    title_key,
    touch_embeddings,
)
from tests.conftest import NOW

DIM = 8
MODEL = "m"
PROFILE = Profile(
    name="p", description="Cars and the fuel they burn.", keywords=["engines", "fuel"]
)


def stand_in(*parts: str) -> np.ndarray:
    """A unit vector drawn from the text (another text, another vector)."""
    seed = int(hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:8], 16)
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def papers(start: int, stop: int) -> list[Paper]:
    return [Paper(title=f"Paper {i}", abstract=f"About topic {i % 7}.") for i in range(start, stop)]


def add(store: SqlStore, items: list[Paper], *, hours: int = 0) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, items, now=NOW + timedelta(hours=hours))


def embed(store: SqlStore) -> None:
    """Store a vector for every paper lacking a current one (title + abstract, and title)."""
    for key, titles in ((MODEL, False), (title_key(MODEL), True)):
        todo = missing_embeddings(store, model=key)
        if todo:
            vectors = np.stack(
                [stand_in(t.title) if titles else stand_in(t.title, t.abstract) for t in todo]
            )
            record_embeddings(store, todo, vectors, model=key, now=NOW)


def keep_queries(store: SqlStore) -> Embedder:
    """An embedder whose model is never loaded: the profile's vectors are kept in the store
    (as a rank keeps them)."""
    for text in query_texts(PROFILE):
        key = text_digest(f"128\x00{text}")
        record_query_vector(store, model=MODEL, key=key, vector=stand_in("q", text))
    return Embedder(MODEL, max_tokens=128, batch_size=8)


@pytest.fixture
def embedder(store: SqlStore) -> Embedder:
    return keep_queries(store)


def ranked(
    store: SqlStore, embedder: Embedder, index: LexicalIndex, weight: float = 0.3
) -> tuple[RowVectors, np.ndarray]:
    settings = RankingSettings(title_weight=weight)
    found = row_vectors(
        store, embedder, row_of=index.row_of_pk(), n_rows=index.n_rows, settings=settings
    )
    assert found is not None
    scores = score_semantic(
        embedder,
        found.vectors,
        PROFILE,
        liked_rows=[index.row_of_pk()[int(index.pks[0])]],
        has=found.has,
        store=store,
        titles=found.titles,
    )
    return found, scores


def fresh(
    store: SqlStore, embedder: Embedder, index: LexicalIndex, weight: float = 0.3
) -> np.ndarray:
    """Scores as a new process computes them: nothing kept."""
    VECTORS.clear()
    return ranked(store, embedder, index, weight)[1]


def expected_layout(store: SqlStore, index: LexicalIndex) -> tuple[np.ndarray, np.ndarray]:
    """Each live row's vector as ``embed`` stored it for the paper's current text."""
    from digestbot.store.schema import papers as papers_table

    with store.transaction() as conn:
        texts = {
            r.pk: (r.title, r.abstract)
            for r in conn.execute(
                sa.select(papers_table.c.pk, papers_table.c.title, papers_table.c.abstract)
            )
        }
    vectors = np.zeros((index.n_rows, DIM), dtype=np.float32)
    has = np.zeros(index.n_rows, dtype=bool)
    for pk, row in index.row_of_pk().items():
        vectors[row] = stand_in(*texts[pk])
        has[row] = True
    return vectors, has


def test_a_second_rank_reads_only_what_changed_and_scores_as_a_fresh_process(
    store: SqlStore, embedder: Embedder, tmp_path: Path
) -> None:
    VECTORS.clear()
    add(store, papers(0, 40))
    embed(store)
    index = open_index(store, tmp_path / "index")
    before = VECTORS.rows_read
    first, scores = ranked(store, embedder, index)
    assert VECTORS.rows_read - before == 80  # 40 papers, 2 vectors each
    want, has = expected_layout(store, index)
    np.testing.assert_array_equal(first.vectors, want)
    np.testing.assert_array_equal(first.has, has)

    before = VECTORS.rows_read
    same = ranked(store, embedder, index)[1]
    assert VECTORS.rows_read == before  # nothing changed: nothing read
    np.testing.assert_array_equal(same, scores)

    # new papers, and a changed abstract (its row moves in the index, its vector is replaced)
    add(store, papers(40, 45))
    add(store, [Paper(title="Paper 3", abstract="Now about walruses.")], hours=1)
    embed(store)
    index = open_index(store, tmp_path / "index")
    before = VECTORS.rows_read
    after, warm = ranked(store, embedder, index)
    assert VECTORS.rows_read - before == 5 * 2 + 2  # 5 new papers' vectors, Paper 3's two
    want, has = expected_layout(store, index)
    np.testing.assert_array_equal(after.vectors, want)
    np.testing.assert_array_equal(after.has, has)
    np.testing.assert_array_equal(warm, fresh(store, embedder, index))
    assert not np.array_equal(warm, scores[: len(warm)])  # the ranking did change


def test_the_title_weight_changing_back_and_forth_keeps_the_scores_fresh(
    store: SqlStore, embedder: Embedder, tmp_path: Path
) -> None:
    VECTORS.clear()
    add(store, papers(0, 30))
    embed(store)
    index = open_index(store, tmp_path / "index")
    ranked(store, embedder, index, 0.3)
    off = ranked(store, embedder, index, 0.0)[1]  # the title vectors are not read
    add(store, papers(30, 34))
    embed(store)
    index = open_index(store, tmp_path / "index")
    before = VECTORS.rows_read
    on = ranked(store, embedder, index, 0.3)[1]  # both keys, from their own marks
    assert VECTORS.rows_read - before == 8
    np.testing.assert_array_equal(on, fresh(store, embedder, index, 0.3))
    np.testing.assert_array_equal(
        ranked(store, embedder, index, 0.0)[1], fresh(store, embedder, index, 0.0)
    )
    assert not np.array_equal(on[: len(off)], off)


def test_a_deleted_vector_and_another_database_at_the_same_url_are_noticed(
    db_url: str, tmp_path: Path
) -> None:
    VECTORS.clear()
    store = SqlStore.open(db_url)
    embedder = keep_queries(store)
    add(store, papers(0, 20))
    embed(store)
    index = open_index(store, tmp_path / "index")
    first = ranked(store, embedder, index)[0]
    assert first.has.all()
    with store.transaction() as conn:  # deleted behind the cache's back
        gone = int(index.pks[5])
        conn.execute(paper_embeddings.delete().where(paper_embeddings.c.paper_pk == gone))
    found = ranked(store, embedder, index)[0]
    assert not found.has[index.row_of_pk()[gone]] and found.has.sum() == 19
    store.close()

    Path(db_url.removeprefix("sqlite:///")).unlink()  # a new database at the same path
    store = SqlStore.open(db_url)
    embedder = keep_queries(store)
    add(store, [Paper(title=f"Paper {i}", abstract="Other text.") for i in range(20)])
    embed(store)
    index = open_index(store, tmp_path / "index2")
    found = ranked(store, embedder, index)[0]
    np.testing.assert_array_equal(found.vectors, expected_layout(store, index)[0])
    store.close()


def test_ranks_in_threads_share_one_copy_and_cannot_write_it(
    store: SqlStore, embedder: Embedder, tmp_path: Path
) -> None:
    cache = VectorCache()
    add(store, papers(0, 50))
    embed(store)
    index = open_index(store, tmp_path / "index")
    results: list[np.ndarray] = []

    def rank() -> None:
        found = cache.by_row(store, [MODEL], row_of=index.row_of_pk(), n_rows=index.n_rows)[MODEL]
        results.append(np.zeros(0) if found is None else found[0])

    threads = [threading.Thread(target=rank) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.rows_read == 50  # read once, by the first
    vectors = results
    assert len(vectors) == 4 and all(np.shares_memory(v, vectors[0]) for v in vectors)
    with pytest.raises(ValueError):
        vectors[0][0, 0] = 1.0
    # a vector written later goes into a copy: what a rank holds does not change under it
    held = vectors[0].copy()
    add(store, [Paper(title="Paper 0", abstract="Changed, and longer.")], hours=1)
    embed(store)
    index = open_index(store, tmp_path / "index")
    later = cache.by_row(store, [MODEL], row_of=index.row_of_pk(), n_rows=index.n_rows)[MODEL]
    assert later is not None
    np.testing.assert_array_equal(vectors[0], held)
    np.testing.assert_array_equal(later[0], expected_layout(store, index)[0])


def test_vectors_are_numbered_by_the_write_that_stored_them(any_store: SqlStore) -> None:
    add(any_store, papers(0, 3))
    embed(any_store)  # two writes: the papers' vectors, then their titles'
    with any_store.transaction() as conn:
        seqs = dict(
            conn.execute(
                sa.select(paper_embeddings.c.model, sa.func.max(paper_embeddings.c.seq)).group_by(
                    paper_embeddings.c.model
                )
            ).all()
        )
        counter = conn.execute(sa.select(embedding_changes.c.seq)).scalar_one()
    assert seqs == {MODEL: 1, title_key(MODEL): 2} and counter == 2
    cache = VectorCache()
    row_of = {
        pk: row
        for row, pk in enumerate(sorted(t.pk for t in missing_embeddings(any_store, model="none")))
    }
    cache.by_row(any_store, [MODEL], row_of=row_of, n_rows=3)
    add(any_store, [Paper(title="Paper 1", abstract="Changed, and longer.")], hours=1)
    embed(any_store)
    found = cache.by_row(any_store, [MODEL], row_of=row_of, n_rows=3)[MODEL]
    assert cache.rows_read == 3 + 1 and found is not None
    with any_store.transaction() as conn:
        pk = conn.execute(sa.text("SELECT pk FROM papers WHERE title = 'Paper 1'")).scalar_one()
    np.testing.assert_array_equal(found[0][row_of[pk]], stand_in("Paper 1", "Changed, and longer."))


def test_a_daemons_repeated_ranks_neither_count_nor_reread_the_vectors(
    store: SqlStore, embedder: Embedder, tmp_path: Path
) -> None:
    VECTORS.clear()
    add(store, papers(0, 20))
    embed(store)
    add(store, papers(20, 23))  # no vector yet: the daemon's worker embeds them
    index = open_index(store, tmp_path / "index")
    acquire_lock(store, "scheduler", holder="daemon:1:x", stale_after=timedelta(90))  # a live one
    statements: list[str] = []

    def capture(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", capture)
    try:
        settings = RankingSettings(title_weight=0.3)
        for _ in range(2):
            found = ready_vectors(
                store,
                embedder,
                settings=settings,
                row_of=index.row_of_pk(),
                n_rows=index.n_rows,
                now=NOW,
            )
            assert found is not None and int(found.has.sum()) == 20
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", capture)
    joins = [s for s in statements if "LEFT OUTER JOIN paper_embeddings" in s]
    assert not joins  # the missing vectors were not counted
    reads = [s for s in statements if "paper_embeddings.vector" in s]
    assert len(reads) == 2  # one statement a rank, the second for what changed only
    assert "paper_embeddings.seq >" not in reads[0] and "paper_embeddings.seq >" in reads[1]
    assert count_missing_embeddings(store, model=MODEL) == 3  # nothing embedded inline


def test_ranks_in_threads_while_papers_and_vectors_are_written(any_store: SqlStore) -> None:
    store = any_store
    cache = VectorCache()
    add(store, papers(0, 30))
    embed(store)
    done = threading.Event()
    seen: list[tuple[dict[int, int], np.ndarray, np.ndarray, np.ndarray]] = []
    errors: list[BaseException] = []

    def layout() -> dict[int, int]:
        pks = sorted(t.pk for t in missing_embeddings(store, model="none"))
        return {pk: row for row, pk in enumerate(pks)}

    def rank() -> None:
        try:
            while not done.is_set():
                row_of = layout()
                found = cache.by_row(store, [MODEL], row_of=row_of, n_rows=len(row_of))[MODEL]
                assert found is not None
                seen.append((row_of, found[0], found[0].copy(), found[1].copy()))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=rank) for _ in range(4)]
    for thread in threads:
        thread.start()
    for step in range(6):  # new papers, and Paper 0-5's text changed
        add(store, papers(30 + 5 * step, 35 + 5 * step), hours=step + 1)
        add(
            store,
            [Paper(title=f"Paper {step}", abstract=f"Rewritten at length {step}.")],
            hours=step + 1,
        )
        embed(store)
    done.set()
    for thread in threads:
        thread.join()
    assert not errors and seen
    allowed = {  # every text a paper had: a rank sees one of them
        f"Paper {i}": {stand_in(p.title, p.abstract).tobytes() for p in papers(i, i + 1)}
        for i in range(60)
    }
    for i in range(6):
        allowed[f"Paper {i}"].add(stand_in(f"Paper {i}", f"Rewritten at length {i}.").tobytes())
    with store.transaction() as conn:
        title_of: dict[int, str] = dict(conn.execute(sa.text("SELECT pk, title FROM papers")).all())
    for row_of, held, copy, has in seen:
        np.testing.assert_array_equal(held, copy)  # not written after it was given
        for pk, row in row_of.items():
            if has[row]:
                assert held[row].tobytes() in allowed[title_of[pk]]
    row_of = layout()
    final = cache.by_row(store, [MODEL], row_of=row_of, n_rows=len(row_of))[MODEL]
    fresh_cache = VectorCache()
    again = fresh_cache.by_row(store, [MODEL], row_of=row_of, n_rows=len(row_of))[MODEL]
    assert final is not None and again is not None
    np.testing.assert_array_equal(final[0], again[0])
    np.testing.assert_array_equal(final[1], again[1])
    # each vector read once, however many ranks ran: 30, then 30 new and 6 rewritten
    assert len(seen) > 4 and cache.rows_read == 30 + 30 + 6


def test_a_vector_whose_paper_has_no_row_yet_is_kept_until_it_has_one(store: SqlStore) -> None:
    cache = VectorCache()
    add(store, papers(0, 4))
    embed(store)
    pks = sorted(t.pk for t in missing_embeddings(store, model="none"))
    lagging = {pk: row for row, pk in enumerate(pks[:3])}  # an index without the last paper
    found = cache.by_row(store, [MODEL], row_of=lagging, n_rows=3)[MODEL]
    assert found is not None and found[1].tolist() == [True] * 3
    synced = {pk: row for row, pk in enumerate(pks)}
    found = cache.by_row(store, [MODEL], row_of=synced, n_rows=4)[MODEL]
    assert found is not None and found[1].tolist() == [True] * 4
    np.testing.assert_array_equal(found[0][3], stand_in("Paper 3", "About topic 3."))
    assert cache.rows_read == 4  # read once
    moved = {pk: 3 - row for pk, row in synced.items()}  # another layout: from memory
    found = cache.by_row(store, [MODEL], row_of=moved, n_rows=4)[MODEL]
    assert found is not None and cache.rows_read == 4
    np.testing.assert_array_equal(found[0][0], stand_in("Paper 3", "About topic 3."))


def test_an_older_copy_of_the_database_restored_is_read_again(db_url: str, tmp_path: Path) -> None:
    cache = VectorCache()
    path = Path(db_url.removeprefix("sqlite:///"))
    store = SqlStore.open(db_url)
    add(store, papers(0, 3))
    embed(store)
    store.close()
    backup = tmp_path / "backup.sqlite3"
    backup.write_bytes(path.read_bytes())
    store = SqlStore.open(db_url)
    add(store, [Paper(title="Paper 1", abstract="Changed, and longer.")], hours=1)
    embed(store)  # the counter passes the backup's
    pks = sorted(t.pk for t in missing_embeddings(store, model="none"))
    row_of = {pk: row for row, pk in enumerate(pks)}
    found = cache.by_row(store, [MODEL], row_of=row_of, n_rows=3)[MODEL]
    assert found is not None
    np.testing.assert_array_equal(found[0][1], stand_in("Paper 1", "Changed, and longer."))
    store.close()
    path.write_bytes(backup.read_bytes())
    Path(f"{path}-wal").unlink(missing_ok=True)
    store = SqlStore.open(db_url)
    found = cache.by_row(store, [MODEL], row_of=row_of, n_rows=3)[MODEL]
    assert found is not None
    np.testing.assert_array_equal(found[0][1], stand_in("Paper 1", "About topic 1."))
    store.close()


def test_a_servers_repeated_ranks_without_a_daemon_count_the_missing_vectors_once(
    store: SqlStore, embedder: Embedder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    VECTORS.clear()
    add(store, papers(0, 20))
    embed(store)
    add(store, papers(20, 23), hours=1)  # no vector yet
    # counted, never embedded inline (no model here): the warning says how many are missing
    settings = RankingSettings(title_weight=0.3, embedding_inline_limit=0)

    def rank_again() -> tuple[int, int, list[str]]:
        """(counts made, papers with a vector, warnings) of one rank, as the service ranks."""
        index = open_index(store, tmp_path / "index")
        statements: list[str] = []

        def capture(_conn: object, _cursor: object, statement: str, *_: object) -> None:
            statements.append(statement)

        caplog.clear()
        before = VECTORS.counted
        sa.event.listen(store.engine, "before_cursor_execute", capture)
        try:
            found = ready_vectors(
                store,
                embedder,
                settings=settings,
                row_of=index.row_of_pk(),
                n_rows=index.n_rows,
                now=NOW,
                layout=index.fingerprint(),
            )
        finally:
            sa.event.remove(store.engine, "before_cursor_execute", capture)
        counted = VECTORS.counted - before
        joins = [s for s in statements if "LEFT OUTER JOIN paper_embeddings" in s]
        assert len(joins) == counted  # a count is the pass over the papers; none otherwise
        assert found is not None
        warned = [
            r.getMessage().split(":")[0] for r in caplog.records if "have no" in r.getMessage()
        ]
        return counted, int(found.has.sum()), warned

    missing3 = ["3 papers have no embedding yet"]
    assert rank_again() == (1, 20, missing3)
    assert rank_again() == (0, 20, missing3)  # nothing changed: remembered, not counted
    add(store, papers(23, 25), hours=2)  # new papers: counted again
    assert rank_again() == (1, 20, ["5 papers have no embedding yet"])
    assert rank_again() == (0, 20, ["5 papers have no embedding yet"])
    embed(store)  # new vectors (a daemon elsewhere, or `digestbot embed`): counted again
    assert rank_again() == (1, 25, [])
    assert rank_again() == (0, 25, [])
    # a changed abstract: the vector is stale (the index re-lists the paper)
    add(store, [Paper(title="Paper 3", abstract="Now about walruses.")], hours=3)
    assert rank_again() == (1, 25, ["1 papers have no embedding yet"])
    assert rank_again() == (0, 25, ["1 papers have no embedding yet"])
    # its vectors marked current again, not replaced (as for a text that did not change)
    for key in (MODEL, title_key(MODEL)):
        touch_embeddings(store, missing_embeddings(store, model=key), model=key)
    assert rank_again() == (1, 25, [])
    assert rank_again() == (0, 25, [])
    assert count_missing_embeddings(store, model=MODEL) == 0


def test_the_missing_count_state_moves_with_every_write_of_vectors_and_new_papers(
    db_url: str, tmp_path: Path
) -> None:
    from digestbot.store.embeddings import missing_state

    store = SqlStore.open(db_url)
    try:
        add(store, papers(0, 3))
        instance, seq, n_papers, max_pk = missing_state(store)
        assert (n_papers, max_pk) == (3, 3)
        embed(store)  # two writes: the title + abstract vectors, then the titles'
        assert missing_state(store) == (instance, seq + 2, 3, 3)
        add(store, [Paper(title="Paper 1", abstract="About topic 1.", upvotes=5)], hours=1)
        assert missing_state(store) == (instance, seq + 2, 3, 3)  # in place: not seen here
        touch_embeddings(store, missing_embeddings(store, model=MODEL), model=MODEL)
        assert missing_state(store) == (instance, seq + 3, 3, 3)  # a touch is a write
        add(store, papers(3, 4), hours=2)
        assert missing_state(store) == (instance, seq + 3, 4, 4)
    finally:
        store.close()
