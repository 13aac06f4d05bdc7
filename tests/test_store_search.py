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
                "SELECT tablename, indexname FROM pg_indexes "
                "WHERE indexname IN ('ix_papers_fulltext', 'ix_paper_search_document')"
            ).all()
        assert indexes == [("paper_search", "ix_paper_search_document")]  # none on papers
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


# -- the index out of the write path, on both databases -------------------------------------


def _search_rows(store: SqlStore) -> int:
    """Papers in the full-text index (FTS5 keeps one ``papers_fts_docsize`` row a paper;
    PostgreSQL one ``paper_search`` row)."""
    table = "papers_fts_docsize" if store.engine.dialect.name == "sqlite" else "paper_search"
    with store.transaction() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_papers_are_indexed_by_the_search_not_by_the_ingest(any_store: SqlStore) -> None:
    from digestbot.store.search import sync_search_index

    _add(
        any_store,
        Paper(title="Kernel detection from the air", abstract="Drones count kernels."),
        Paper(title="Seal counting", abstract="Kernels too, in passing."),
    )
    assert _search_rows(any_store) == 0  # the insert wrote no index row
    assert _titles(any_store, "kernels") == [
        "Kernel detection from the air",  # the title tier first (stemmed: kernel)
        "Seal counting",
    ]
    assert _search_rows(any_store) == 2
    _add(any_store, Paper(title="Narwhal tusks", abstract="And kernels."))
    assert _search_rows(any_store) == 2
    with any_store.transaction() as conn:  # as after an ingest: one sync, then nothing to do
        assert sync_search_index(conn) == 1
        assert sync_search_index(conn) == 0
    assert _titles(any_store, "kernels") == [
        "Kernel detection from the air",
        "Narwhal tusks",
        "Seal counting",
    ]


@pytest.mark.parametrize("indexed_first", [True, False])
def test_a_new_arxiv_version_changing_the_title_is_searched_by_its_new_words(
    any_store: SqlStore, indexed_first: bool
) -> None:
    from digestbot.store.search import sync_search_index

    _add(
        any_store,
        Paper(
            title="Gradient flows", abstract="On walruses.", arxiv_id="2501.00001", arxiv_version=1
        ),
        Paper(title="Other gradient paper", abstract="Nothing else.", arxiv_id="2501.00002"),
    )
    if indexed_first:  # the paper is in the index when its text changes (the trigger path)
        with any_store.transaction() as conn:
            assert sync_search_index(conn) == 2
    _add(
        any_store,
        Paper(
            title="Score matching for narwhals",
            abstract="A rewrite.",
            arxiv_id="2501.00001",
            arxiv_version=2,
        ),
    )
    assert _titles(any_store, "gradient") == ["Other gradient paper"]
    assert _titles(any_store, "walruses") == []
    assert _titles(any_store, "narwhals score") == ["Score matching for narwhals"]
    assert _titles(any_store, "rewrite") == ["Score matching for narwhals"]
    assert _search_rows(any_store) == 2
    # seen again with the same text: nothing changes
    _add(any_store, Paper(title="Other gradient paper", abstract="", arxiv_id="2501.00002"))
    assert _titles(any_store, "gradient") == ["Other gradient paper"]


def test_a_deleted_paper_leaves_the_index(any_store: SqlStore) -> None:
    _add(
        any_store,
        Paper(title="Kept walrus paper", abstract=""),
        Paper(title="Dropped walrus paper", abstract=""),
    )
    assert len(_titles(any_store, "walrus")) == 2  # both indexed
    _add(any_store, Paper(title="Late walrus paper", abstract=""))  # not indexed yet
    with any_store.transaction() as conn:
        conn.execute(
            sa.text("DELETE FROM papers WHERE title LIKE 'Dropped%' OR title LIKE 'Late%'")
        )
    assert _titles(any_store, "walrus") == ["Kept walrus paper"]
    assert _search_rows(any_store) == 1


# The answer of versions 1-4 on PostgreSQL (a GIN index on papers), written out here to
# compare the search table's answers with, in the same order.
_OLD_PG_QUERY = """
SELECT title FROM papers
WHERE to_tsvector('english', title || ' ' || abstract) @@ plainto_tsquery('english', :q)
ORDER BY CASE WHEN to_tsvector('english', title) @@ plainto_tsquery('english', :q)
    THEN 0 ELSE 1 END, pk DESC
LIMIT :limit OFFSET :offset
"""

_CORPUS = [
    Paper(title="Sparse attention kernels", abstract="Long context transformers."),
    Paper(title="Mamba: state space models", abstract="Linear-time sequence modelling."),
    Paper(title="State of the art in vision", abstract="Spaces of images; sparse codes."),
    Paper(title="Attention is all you need", abstract="The transformer."),
    Paper(title="Running mice", abstract="Mice that ran; state-space dynamics."),
    Paper(title="Quantization", abstract="Sparse and dense attention, quantized."),
    Paper(title="Échecs et maths", abstract="Café chess-playing engines."),
]
_QUERIES = ["sparse", "attention", "state space", "ran", "models", "café", "transformers"]


@pytest.mark.postgres
def test_postgres_answers_as_the_old_gin_index_did() -> None:
    from tests.conftest import open_postgres_store

    store = open_postgres_store()
    try:
        _add(store, *_CORPUS)
        _add(
            store, *(Paper(title=f"Sparse note {i}", abstract="about attention") for i in range(4))
        )
        for query in _QUERIES:
            for limit, offset in ((3, 0), (3, 3), (20, 0)):
                with store.transaction() as conn:
                    old = conn.execute(
                        sa.text(_OLD_PG_QUERY), {"q": query, "limit": limit, "offset": offset}
                    ).scalars()
                    expected = list(old)
                got = _titles(store, query, limit=limit, offset=offset)
                assert got == expected, (query, limit, offset)
        assert _titles(store, "sparse", limit=3) == [
            "Sparse note 3",
            "Sparse note 2",
            "Sparse note 1",
        ]
    finally:
        store.close()


@pytest.mark.postgres
def test_a_version_4_postgres_database_moves_its_index_out_of_the_write_path() -> None:
    from digestbot.store.schema import SCHEMA_VERSION, schema_info
    from tests.conftest import POSTGRES_URL, open_postgres_store

    assert POSTGRES_URL
    store = open_postgres_store()
    _add(store, *_CORPUS)
    with store.transaction() as conn:  # as version 4 left it: a GIN index on papers
        conn.exec_driver_sql("DROP TABLE paper_search")
        conn.exec_driver_sql("DROP FUNCTION paper_search_follow() CASCADE")  # and its triggers
        conn.exec_driver_sql("DELETE FROM schema_info WHERE key = 'fts_indexed_pk'")
        conn.exec_driver_sql(
            "CREATE INDEX ix_papers_fulltext ON papers "
            "USING GIN (to_tsvector('english', title || ' ' || abstract))"
        )
        conn.execute(schema_info.update().where(schema_info.c.key == "version").values(value="4"))
        before = {
            q: list(conn.execute(sa.text(_OLD_PG_QUERY), {"q": q, "limit": 20, "offset": 0}))
            for q in _QUERIES
        }
    store.close()
    assert before["sparse"] == [
        ("Sparse attention kernels",),  # in the title
        ("Quantization",),  # then newest first
        ("State of the art in vision",),
    ]

    store = SqlStore.open(POSTGRES_URL)
    try:
        with store.transaction() as conn:
            version = conn.execute(
                sa.select(schema_info.c.value).where(schema_info.c.key == "version")
            ).scalar_one()
            old_index = conn.exec_driver_sql(
                "SELECT 1 FROM pg_indexes WHERE indexname = 'ix_papers_fulltext'"
            ).first()
        assert version == str(SCHEMA_VERSION) == "6"
        assert old_index is None
        assert _search_rows(store) == 0  # filled by the first search
        for query in _QUERIES:
            assert [(t,) for t in _titles(store, query, limit=20)] == before[query], query
        assert _search_rows(store) == len(_CORPUS)
        # the triggers are there: a new version's title is found by its words
        longer = "Now about walruses, a longer abstract than the first one."
        _add(store, Paper(title="Sparse attention kernels", abstract=longer))
        assert _titles(store, "walruses") == ["Sparse attention kernels"]
    finally:
        store.close()
    again = SqlStore.open(POSTGRES_URL)  # opening it again changes nothing
    try:
        assert _search_rows(again) == len(_CORPUS)
        assert _titles(again, "walruses") == ["Sparse attention kernels"]
    finally:
        again.close()


@pytest.mark.postgres
def test_postgres_search_beside_an_open_ingest_waits_for_nothing_and_skips_nothing() -> None:
    import threading

    from tests.conftest import open_postgres_store

    store = open_postgres_store()
    try:
        _add(store, Paper(title="Committed walrus paper", abstract=""))
        assert _titles(store, "walrus") == ["Committed walrus paper"]  # indexed
        with store.transaction() as writer:  # an ingest's file, not committed yet
            store.upsert_papers(writer, [Paper(title="Pending walrus paper", abstract="")], now=NOW)
            answers: list[list[str]] = []
            search = threading.Thread(target=lambda: answers.append(_titles(store, "walrus")))
            search.start()
            search.join(timeout=20)
            # nothing new committed: the writer's lock is not waited for
            assert not search.is_alive()
            assert answers == [["Committed walrus paper"]]
        assert _titles(store, "walrus") == ["Pending walrus paper", "Committed walrus paper"]
        assert _search_rows(store) == 2
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_a_long_catch_up_says_so_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from digestbot.store import search
    from tests.conftest import open_postgres_store

    monkeypatch.setattr(search, "BIG_SYNC", 3)
    monkeypatch.setattr(search, "SEARCH_STEP", 2)  # said once, not once a step
    store = open_postgres_store()
    try:
        _add(store, *(Paper(title=f"Walrus {i}", abstract="") for i in range(5)))
        with store.transaction() as conn:  # pks 1-5, two gone before being indexed
            conn.execute(sa.text("DELETE FROM papers WHERE title IN ('Walrus 1', 'Walrus 2')"))
        with caplog.at_level(logging.INFO, logger="digestbot.store.search"):
            assert len(_titles(store, "walrus")) == 3
            assert len(_titles(store, "walrus")) == 3  # nothing left: nothing said
        said = [r.getMessage() for r in caplog.records if r.name == "digestbot.store.search"]
        assert said == ["full-text index: indexing 3 papers (about 1 s)"]  # papers, not pks
    finally:
        store.close()


def test_a_catch_up_goes_in_steps_that_let_writers_in_between(any_store: SqlStore) -> None:
    """A large catch-up (the first search after an upgrade) indexes ``step`` pks a
    transaction: between two steps the write lock is free, so a writer gets in (held up by
    one whole catch-up, it waited ~27 s at 100,000 papers), and its paper is caught up too."""
    from digestbot.store.search import catch_up_search_index

    _add(any_store, *(Paper(title=f"Walrus {i}", abstract="On ice.") for i in range(7)))
    steps: list[int] = []

    def between_steps(done: int) -> None:
        steps.append(done)
        if len(steps) == 1:  # this thread: a lock still held would never be released
            _add(any_store, Paper(title="Walrus late", abstract="Written mid catch-up."))

    assert catch_up_search_index(any_store, step=2, on_step=between_steps) == 8
    assert steps == [2, 2, 2, 2]
    assert _search_rows(any_store) == 8
    assert catch_up_search_index(any_store, step=2, on_step=between_steps) == 0
    assert len(_titles(any_store, "walrus", limit=20)) == 8
    assert _titles(any_store, "mid catch-up") == ["Walrus late"]


@pytest.mark.postgres
def test_postgres_a_statement_timeout_shorter_than_the_catch_up_still_lets_search_work() -> None:
    """A managed server's ``statement_timeout`` (here 400 ms) shorter than the whole
    catch-up (6,000 papers, ~1.7 s of ``to_tsvector`` here): the catch-up in one statement
    is cancelled, every time. In steps (of 200 papers under this timeout, ~60 ms here) the
    search answers."""
    from digestbot.errors import StoreError
    from digestbot.store.search import catch_up_search_index, sync_search_index
    from tests.conftest import POSTGRES_URL, open_postgres_store

    assert POSTGRES_URL
    store = open_postgres_store()
    with store.transaction() as conn:  # as a version 4 database upgraded: nothing indexed
        conn.exec_driver_sql(
            "INSERT INTO papers (id, title_key, tid, title, abstract, first_seen, last_seen, "
            "updated_at) SELECT 'p' || i, 'k' || i, 't' || i, 'Walrus ' || i, "
            "repeat('seals swim in cold arctic water near the ice shelf ' || i || ' ', 40), "
            "now(), now(), now() FROM generate_series(1, 6000) AS i"
        )
    store.close()
    separator = "&" if "?" in POSTGRES_URL else "?"
    timed = SqlStore.open(
        f"{POSTGRES_URL}{separator}options=-c%20statement_timeout%3D400", create=False
    )
    try:
        # the whole catch-up in one statement
        with pytest.raises(StoreError, match="statement timeout"), timed.transaction() as conn:
            sync_search_index(conn)
        page = search_papers(timed, "walrus 5999", limit=3)
        assert [p.title for p in page.papers] == ["Walrus 5999"]
        assert _search_rows(timed) == 6000
        with timed.transaction() as conn:  # the next 300 papers: steps of 200, then 100
            conn.exec_driver_sql(
                "INSERT INTO papers (id, title_key, tid, title, abstract, first_seen, "
                "last_seen, updated_at) SELECT 'q' || i, 'l' || i, 'u' || i, 'Seal ' || i, "
                "'', now(), now(), now() FROM generate_series(1, 300) AS i"
            )
        steps: list[int] = []
        assert catch_up_search_index(timed, on_step=steps.append) == 300
        assert steps == [200, 100]
    finally:
        timed.close()


@pytest.mark.postgres
def test_postgres_a_huge_abstract_does_not_stop_every_search() -> None:
    """PostgreSQL's tsvector holds at most 1 MB of distinct words. Indexed on insert (schema
    4) such a paper failed its own file; indexed by the search, it failed every search and
    every ingest's catch-up after it, the watermark stuck before it. The document indexed
    is the text's first 250,000 characters (at most 1 MB in UTF-8)."""
    from tests.conftest import open_postgres_store

    huge = " ".join(f"w{i:x}q{i * 7919 % 100003:x}" for i in range(120_000))  # ~1.6 MB
    store = open_postgres_store()
    try:
        _add(store, Paper(title="Walrus before", abstract=""))
        _add(store, Paper(title="Data dump", abstract=huge))
        _add(store, Paper(title="Walrus after", abstract=""))
        assert _titles(store, "walrus") == ["Walrus after", "Walrus before"]
        assert _titles(store, "w0q0") == ["Data dump"]  # its first words are searched
        assert _search_rows(store) == 3
        # a change to an indexed paper (the trigger) is no error either
        _add(store, Paper(title="Walrus before", abstract=huge + " and a walrus"))
        with store.transaction() as conn:
            stored = "SELECT length(abstract) FROM papers WHERE title = 'Walrus before'"
            assert conn.exec_driver_sql(stored).scalar_one() > len(huge)
        assert _titles(store, "walrus") == ["Walrus after", "Walrus before"]
    finally:
        store.close()


def _waiting_on_locks(store: SqlStore) -> int:
    with store.transaction() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar_one()
        )


@pytest.mark.postgres
def test_a_version_4_postgres_database_upgraded_beside_a_running_writer_deadlocks_nobody() -> None:
    """An older daemon still writing while a new digestbot opens (and upgrades) the database:
    its writers take the write lock, then touch ``papers``; the upgrade locked ``papers`` whole
    (DROP INDEX) and then the lock's row (the version's update): a writer between the two
    deadlocked with it ("cannot open the database: deadlock detected"). The upgrade now takes
    the write lock before its first DDL, as every writer does."""
    import threading
    import time
    from collections.abc import Callable

    from digestbot.store.schema import schema_info
    from tests.conftest import POSTGRES_URL, open_postgres_store

    assert POSTGRES_URL
    store = open_postgres_store()
    _add(store, *_CORPUS)
    with store.transaction() as conn:  # as version 4 left it (see the test above)
        conn.exec_driver_sql("DROP TABLE paper_search")
        conn.exec_driver_sql("DROP FUNCTION paper_search_follow() CASCADE")
        conn.exec_driver_sql("DELETE FROM schema_info WHERE key = 'fts_indexed_pk'")
        conn.exec_driver_sql(
            "CREATE INDEX ix_papers_fulltext ON papers "
            "USING GIN (to_tsvector('english', title || ' ' || abstract))"
        )
        conn.execute(schema_info.update().where(schema_info.c.key == "version").values(value="4"))
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> threading.Thread:
        def target() -> None:
            try:
                work()
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        return thread

    def wait_for_waiters(count: int) -> None:
        deadline = time.monotonic() + 20
        while _waiting_on_locks(store) < count:
            assert time.monotonic() < deadline, "the others never queued"
            time.sleep(0.05)

    def upgrade() -> None:
        SqlStore.open(POSTGRES_URL).close()

    try:
        with store.transaction() as writer:  # the older daemon, mid-transaction
            store.upsert_papers(writer, [Paper(title="First walrus", abstract="")], now=NOW)
            opening = run(upgrade)
            wait_for_waiters(1)
            second = run(lambda: _add(store, Paper(title="Second walrus", abstract="")))
            wait_for_waiters(2)
        opening.join(timeout=30)
        second.join(timeout=30)
        assert not opening.is_alive() and not second.is_alive()
        assert errors == []
        assert _titles(store, "walrus") == ["Second walrus", "First walrus"]
    finally:
        store.close()
