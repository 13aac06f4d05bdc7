"""Full-text search: FTS5 kept in sync with papers, user text quoted, never an error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.search import build_fts_query, parse_search_terms, search_papers
from tests.conftest import NOW


def _add(store: SqlStore, *papers: Paper) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, list(papers), now=NOW)


def _titles(store: SqlStore, text: str, **kwargs: int) -> list[str]:
    return [p.title for p in search_papers(store, text, **kwargs).papers]


def test_search_ranks_title_hits_first_and_follows_updates(store: SqlStore) -> None:
    _add(
        store,
        Paper(title="Sparse attention for long context", abstract="We study kernels."),
        Paper(title="A study of kernels", abstract="Mentions sparse attention once."),
        Paper(title="Unrelated vision paper", abstract="Images."),
    )
    assert _titles(store, "sparse attention") == [
        "Sparse attention for long context",  # every word in the title comes first
        "A study of kernels",
    ]
    assert _titles(store, "SPARSE Attentions") == _titles(store, "sparse attention")  # stemming
    # an upsert that merges a new abstract re-indexes the paper
    _add(store, Paper(title="Unrelated vision paper", abstract="Now about sparse attention."))
    assert "Unrelated vision paper" in _titles(store, "sparse attention")
    assert _titles(store, "images") == []


def test_title_hits_first_then_newest_first_across_pages(store: SqlStore) -> None:
    _add(store, Paper(title="Old quantization survey", abstract=""))
    _add(store, *(Paper(title=f"Note {i}", abstract="about quantization") for i in range(6)))
    _add(store, Paper(title="New quantization method", abstract=""))
    order = ["New quantization method", "Old quantization survey"] + [
        f"Note {i}" for i in reversed(range(6))
    ]
    assert _titles(store, "quantization", limit=8) == order
    pages = [_titles(store, "quantization", limit=3, offset=o) for o in (0, 3, 6)]
    assert pages == [order[0:3], order[3:6], order[6:8]]


def test_paging_reports_whether_more_remain(store: SqlStore) -> None:
    _add(store, *(Paper(title=f"Quantization trick {i}", abstract="") for i in range(7)))
    first = search_papers(store, "quantization", limit=5)
    rest = search_papers(store, "quantization", limit=5, offset=5)
    assert (len(first.papers), first.has_more) == (5, True)
    assert (len(rest.papers), rest.has_more) == (2, False)
    assert not {p.id for p in first.papers} & {p.id for p in rest.papers}


@pytest.mark.parametrize(
    "text",
    [
        '"unbalanced AND (',
        "*",
        "NEAR(a b",
        "title:x",
        "a OR b NOT c",
        "'; DROP TABLE papers; --",
        '"""',
        "^start",
        "\x00",
        "",
    ],
)
def test_fts_syntax_in_user_text_is_searched_literally(store: SqlStore, text: str) -> None:
    _add(store, Paper(title="Plain title", abstract="plain words"))
    page = search_papers(store, text)
    assert page.papers == []
    assert store.count_papers() == 1


def test_operators_are_words_not_syntax(store: SqlStore) -> None:
    _add(
        store,
        Paper(title="Rock AND roll, NOT jazz", abstract=""),
        Paper(title="Rock music", abstract="no conjunction"),
    )
    assert _titles(store, "rock AND") == ["Rock AND roll, NOT jazz"]
    assert _titles(store, 'rock "roll') == ["Rock AND roll, NOT jazz"]
    assert _titles(store, "self-supervised") == []


def test_quoting() -> None:
    assert parse_search_terms('  a  "b  * (c) ') == ("a", '"b', "(c)")
    assert build_fts_query(('"b', "(c)")) == '"""b" "(c)"'


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=80))
def test_any_text_is_searchable_without_error(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    store = _shared_store(tmp_path_factory)
    page = search_papers(store, text)
    assert len(page.papers) <= 5


_STORES: dict[int, SqlStore] = {}


def _shared_store(factory: pytest.TempPathFactory) -> SqlStore:
    key = id(factory)
    if key not in _STORES:
        path = factory.mktemp("fuzz") / "db.sqlite3"
        _STORES[key] = SqlStore.open(f"sqlite:///{path}")
        _add(_STORES[key], Paper(title="Attention is all", abstract="words and more words"))
    return _STORES[key]


@pytest.fixture(scope="module", autouse=True)
def _close_shared() -> object:
    yield None
    for store in _STORES.values():
        store.close()
    _STORES.clear()


def test_an_existing_database_without_the_index_gets_it_filled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    store = SqlStore.open(url)
    _add(store, Paper(title="Mamba state space models", abstract=""))
    with store.transaction() as conn:  # as an older digestbot left it
        for name in ("papers_fts_ad", "papers_fts_au"):
            conn.exec_driver_sql(f"DROP TRIGGER {name}")
        conn.exec_driver_sql("DROP TABLE papers_fts")
        conn.exec_driver_sql("DELETE FROM schema_info WHERE key = 'fts_indexed_pk'")
        store.upsert_papers(
            conn, [Paper(title="Mamba two", abstract="")], now=NOW + timedelta(days=1)
        )
    store.close()
    reopened = SqlStore.open(url)
    try:
        assert sorted(_titles(reopened, "mamba")) == ["Mamba state space models", "Mamba two"]
        with reopened.transaction() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM papers_fts")).scalar_one()
        assert count == 2
    finally:
        reopened.close()


@pytest.mark.postgres
def test_postgres_full_text_search_uses_plainto_tsquery() -> None:
    import uuid

    from tests.conftest import POSTGRES_URL

    assert POSTGRES_URL
    store = SqlStore.open(POSTGRES_URL)
    tag = f"zq{uuid.uuid4().hex[:10]}"
    try:
        _add(
            store,
            Paper(title=f"{tag} sparse attention kernels", abstract="Long context."),
            Paper(title=f"{tag} vision", abstract="Mentions sparse attention."),
            Paper(title=f"{tag} unrelated", abstract="Images."),
        )
        assert _titles(store, f"{tag} attentions") == [
            f"{tag} sparse attention kernels",
            f"{tag} vision",
        ]
        # Words and syntax, no error. The tag keeps other tests' papers out of the answer
        # (the database is shared).
        for hostile in ('"unbalanced AND (', "a & | ! b", "'; DROP TABLE papers; --"):
            assert search_papers(store, f"{tag} {hostile}").papers == []
        assert len(_titles(store, f"{tag} *")) == 3
        assert _titles(store, f"{tag} | ! vision:*") == [f"{tag} vision"]
        with store.transaction() as conn:
            indexes = conn.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_papers_fulltext'"
            ).all()
        assert len(indexes) == 1
    finally:
        with store.transaction() as conn:
            conn.execute(sa.text("DELETE FROM papers WHERE title LIKE :t"), {"t": f"{tag}%"})
        store.close()


def test_index_trails_writes_and_follows_updates_of_indexed_papers(store: SqlStore) -> None:
    from digestbot.store.search import sync_search_index

    _add(store, Paper(title="Quiet paper", abstract="About walruses."))
    with store.transaction() as conn:
        assert sync_search_index(conn) == 1
        assert sync_search_index(conn) == 0
    assert _titles(store, "walruses") == ["Quiet paper"]
    # a longer abstract arrives for the indexed paper: the old words leave the index
    _add(store, Paper(title="Quiet paper", abstract="About narwhals, a much longer abstract."))
    assert _titles(store, "narwhals") == ["Quiet paper"]
    assert _titles(store, "walruses") == []
    # a paper written after the last sync is found: search syncs first
    _add(store, Paper(title="Loud paper", abstract="About narwhals too."))
    assert sorted(_titles(store, "narwhals")) == ["Loud paper", "Quiet paper"]
    with store.transaction() as conn:
        count = conn.execute(sa.text("SELECT count(*) FROM papers_fts")).scalar_one()
        integrity = conn.exec_driver_sql(
            "INSERT INTO papers_fts(papers_fts, rank) VALUES ('integrity-check', 1)"
        )
    assert count == 2 and integrity is not None
