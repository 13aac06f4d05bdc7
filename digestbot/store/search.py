"""Full-text search over papers (title, abstract).

Both databases keep the full-text index out of the write path: an ingest writes papers
at full speed, and the index trails the papers table, caught up by ``sync_search_index``
(the rows past a watermark, ``schema_info`` key ``fts_indexed_pk``, in one set-based
statement) after an ingest and before every search. Updates and deletes of papers
already indexed are mirrored at once by triggers (rare: a merge that brings a new title
or abstract). Indexing on write cost several times the insert of the paper itself.

SQLite: an FTS5 external-content table ``papers_fts`` over ``papers``, created (and
filled from the existing papers) the first time the schema is created on a database that
lacks it. PostgreSQL (schema version 5): the table ``paper_search`` (paper pk ->
``to_tsvector('english', title || ' ' || abstract)``, GIN-indexed, and the title's own
tsvector, which orders the answer), filled by ``INSERT ... SELECT`` and queried with
``plainto_tsquery``; the triggers on ``papers`` fire only when a title or abstract
really changes. A database of versions 1-4 (a GIN index on ``papers``, updated on every
insert) loses that index and gets the empty table on open; its first sync indexes every
paper (~0.27 ms of server CPU a paper, mostly ``to_tsvector`` itself: 100,000 in ~26 s,
once; see README). A catch-up (``catch_up_search_index``, after an ingest and before a
search) goes in steps of ``SEARCH_STEP`` pks, each its own short transaction and
statement: writers wait for one step at most (~1.5 s, not the whole catch-up: ~27 s at
100,000 papers), and a step is kept under the server's ``statement_timeout`` (at most
half of it in ms, ~1/6 of its time), which cancelled the one statement. Where papers
are waiting, each step takes the store's write lock first, so it waits for a writer
still in its transaction: pks are taken in commit order, and no paper is skipped by the
watermark. Any other database: every word as a substring (slow, correct).

User text never reaches the FTS query language: each whitespace-separated chunk
becomes one FTS5 *string* (a quoted phrase, ``"`` doubled), so ``AND``, ``(``,
``*``, ``NEAR`` and quotes are searched as text. Chunks with no letter or digit
are dropped; a query with nothing left finds nothing.

Order: papers with every word in the title first, then the others, newest first
within each: two FTS5 queries that each stop after the page they need, so the
answer time does not grow with the number of matches. (bm25 was measured and
dropped: its idf reads every match of every term, 200+ ms at 1M papers for a
common word.)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.models import Paper
from digestbot.store.schema import (
    SEARCH_DOCUMENT,
    SEARCH_TABLE,
    SEARCH_TITLE,
    SEARCH_WATERMARK,
    metadata,
    papers,
)
from digestbot.store.sql import _PAPER_COLUMNS, SqlStore, _paper_from_row, take_write_lock

log = logging.getLogger(__name__)

MAX_TERMS = 16  # bounds the cost of one query
BIG_SYNC = 10_000  # papers: a catch-up this long says so first (~0.3 ms a paper on PostgreSQL)
# pks indexed per transaction by a catch-up. PostgreSQL: ~1.5 s of one statement and of the
# write lock held here (~0.3 ms a paper; 100,000 take as long in steps as in one statement),
# and at most half the server's ``statement_timeout`` in milliseconds (~1/6 of it here).
# SQLite: bounds the FTS5 memory of one commit (~1 s).
SEARCH_STEP = 5_000
SQLITE_SEARCH_STEP = 20_000
MAX_TERM_CHARS = 64

_WORDISH = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_WATERMARK = SEARCH_WATERMARK
_INDEXED = f"(SELECT CAST(value AS INTEGER) FROM schema_info WHERE key = '{_WATERMARK}')"  # noqa: S608
_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, content='papers', "
    "content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2')",
    f"CREATE TRIGGER IF NOT EXISTS papers_fts_ad AFTER DELETE ON papers "  # noqa: S608
    f"WHEN old.pk <= {_INDEXED} BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.pk, old.title, old.abstract); END",
    f"CREATE TRIGGER IF NOT EXISTS papers_fts_au AFTER UPDATE OF title, abstract ON papers "  # noqa: S608
    f"WHEN old.pk <= {_INDEXED} BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.pk, old.title, old.abstract); "
    "INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.pk, new.title, new.abstract); "
    "END",
    "INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')",
    f"INSERT INTO schema_info(key, value) SELECT '{_WATERMARK}', CAST(COALESCE(MAX(pk), 0) "  # noqa: S608
    "AS TEXT) FROM papers",
)
# The papers with ``:indexed < pk <= :newest`` into the index, per database.
_FILLS = {
    "sqlite": sa.text(
        "INSERT INTO papers_fts(rowid, title, abstract) "
        "SELECT pk, title, abstract FROM papers WHERE pk > :indexed AND pk <= :newest"
    ),
    "postgresql": sa.text(
        f"INSERT INTO {SEARCH_TABLE} (paper_pk, document, title) "  # noqa: S608
        f"SELECT pk, {SEARCH_DOCUMENT.format(row='')}, {SEARCH_TITLE.format(row='')} "
        "FROM papers WHERE pk > :indexed AND pk <= :newest"
    ),
}
_WATERMARK_SQL = sa.text("SELECT CAST(value AS BIGINT) FROM schema_info WHERE key = :key")
_NEWEST_SQL = sa.text("SELECT COALESCE(MAX(pk), 0) FROM papers")
_search_table = sa.table(
    SEARCH_TABLE, sa.column("paper_pk"), sa.column("document"), sa.column("title")
)


@dataclass(frozen=True, slots=True)
class SearchPage:
    papers: list[Paper]
    has_more: bool
    terms: tuple[str, ...]


def parse_search_terms(text: str) -> tuple[str, ...]:
    """The chunks of user text worth searching for, at most ``MAX_TERMS``."""
    cleaned = _CONTROL.sub(" ", text)
    chunks = [c[:MAX_TERM_CHARS] for c in cleaned.split() if _WORDISH.search(c)]
    return tuple(chunks[:MAX_TERMS])


def build_fts_query(terms: tuple[str, ...]) -> str:
    """Every term as an FTS5 string token (implicit AND between them)."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _create_search_index(target: Any, connection: Connection, **_kw: Any) -> None:
    """``after_create`` hook on the shared metadata: make the SQLite index if it is missing
    (PostgreSQL's is made by the schema's version 5 step, ``schema.start_search_table``)."""
    del target
    if connection.dialect.name == "sqlite":
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='papers_fts'"
        ).first()
        if exists is None:
            for statement in _SQLITE_DDL:
                connection.exec_driver_sql(statement)


sa.event.listen(metadata, "after_create", _create_search_index)


def sync_search_index(conn: Connection, *, limit: int | None = None) -> int:
    """Index the papers stored since the last sync (at most ``limit`` of them, by pk);
    returns how many pks the watermark moved by. Under the store's write lock (every writer
    of papers takes it first and holds it to its commit: once this transaction holds it,
    every pk taken is committed or rolled back, so the newest pk read next passes no paper
    still to come), one ``INSERT ... SELECT`` (``_FILLS``) and the watermark moved, both
    committed with the lock's release: two processes never index the same rows twice.
    PostgreSQL looks for new papers before it takes the lock (nothing locked while nothing
    is new; SQLite takes it first, as it always has). Databases other than SQLite and
    PostgreSQL: nothing to do.
    """
    fill = _FILLS.get(conn.dialect.name)
    if fill is None:
        return 0
    if conn.dialect.name == "postgresql":  # nothing locked while nothing is new
        span = _unindexed_span(conn)
        if span is None or span[1] <= span[0]:
            return 0
    take_write_lock(conn)
    indexed = conn.execute(_WATERMARK_SQL, {"key": _WATERMARK}).scalar()
    if indexed is None:  # no search index in this database
        return 0
    newest = conn.execute(_NEWEST_SQL).scalar_one()
    if limit is not None:
        newest = min(newest, indexed + limit)
    if newest <= indexed:
        return 0
    conn.execute(fill, {"indexed": indexed, "newest": newest})
    conn.execute(
        sa.text("UPDATE schema_info SET value = :value WHERE key = :key"),
        {"value": str(newest), "key": _WATERMARK},
    )
    return int(newest - indexed)


def default_step(dialect: str) -> int:
    """The pks indexed per transaction: ``SEARCH_STEP`` on PostgreSQL, else
    ``SQLITE_SEARCH_STEP``."""
    return SEARCH_STEP if dialect == "postgresql" else SQLITE_SEARCH_STEP


def catch_up_search_index(
    store: SqlStore,
    *,
    step: int | None = None,
    on_step: Callable[[int], None] | None = None,
) -> int:
    """Index every paper stored since the last sync, ``step`` pks past the watermark per
    transaction; returns how many pks the watermark moved by. Each step is one
    ``sync_search_index``: the write lock, one ``INSERT ... SELECT``, the watermark moved
    and committed, the lock released; writers (an ingest, a feed poll) interleave with the
    steps, and no statement runs longer than one step. A step reading fewer than ``step``
    pks reached the newest paper committed: the catch-up ends. ``on_step`` gets each
    step's count. A backlog of ``BIG_SYNC`` papers or more on PostgreSQL says so first.
    ``step`` by default: ``SEARCH_STEP`` on PostgreSQL, ``SQLITE_SEARCH_STEP`` on SQLite;
    on PostgreSQL never more than half the session's ``statement_timeout`` in ms."""
    if store.engine.dialect.name not in ("sqlite", "postgresql"):
        return 0  # no index: nothing to catch up
    pks, backlog = _backlog(store)
    if pks == 0:
        return 0
    postgres = store.engine.dialect.name == "postgresql"
    if step is None:
        step = default_step(store.engine.dialect.name)
    if postgres:
        step = _within_statement_timeout(store, step)
    if backlog >= BIG_SYNC and postgres:
        log.info(
            "full-text index: indexing %d papers (about %d s)",
            backlog,
            max(1, backlog * 3 // 10_000),
        )
    total = 0
    while True:
        with store.transaction() as conn:
            done = sync_search_index(conn, limit=step)
        total += done
        if on_step is not None and done:
            on_step(done)
        if done < step:
            return total


def _within_statement_timeout(store: SqlStore, step: int) -> int:
    """``step``, or half the session's ``statement_timeout`` in ms if that is fewer pks
    (~0.3 ms a paper here: a step takes ~1/6 of the timeout; at least 100 pks)."""
    with store.transaction() as conn:
        timeout_ms = conn.exec_driver_sql(
            "SELECT CAST(setting AS BIGINT) FROM pg_settings WHERE name = 'statement_timeout'"
        ).scalar()
    if not timeout_ms:  # 0: none
        return step
    return max(100, min(step, int(timeout_ms) // 2))


def count_search_backlog(store: SqlStore) -> int:
    """The pks past the search index's watermark: what the counts a catch-up gives its
    ``on_step`` add up to, unless papers are written meanwhile (a progress bar's total).
    0 where there is no search index. Read without a lock."""
    with store.transaction() as conn:
        span = _unindexed_span(conn)
    return 0 if span is None else max(span[1] - span[0], 0)


def _unindexed_span(conn: Connection) -> tuple[int, int] | None:
    """The watermark and the newest pk, or None where there is no search index."""
    if conn.dialect.name not in _FILLS:
        return None
    indexed = conn.execute(_WATERMARK_SQL, {"key": _WATERMARK}).scalar()
    if indexed is None:
        return None
    return int(indexed), int(conn.execute(_NEWEST_SQL).scalar_one())


def _backlog(store: SqlStore) -> tuple[int, int]:
    """The pks past the watermark, and the papers among them (committed ones; read without
    a lock, so an estimate): 0 at once where there are none or no search index. The rows are
    counted only for a large pk range (cheap beside its catch-up), so that gaps in the pks
    do not overstate it."""
    with store.transaction() as conn:
        span = _unindexed_span(conn)
        if span is None:
            return 0, 0
        indexed, newest = span
        pks = max(newest - indexed, 0)
        if pks < BIG_SYNC:
            return pks, pks
        count = conn.execute(
            sa.text("SELECT count(*) FROM papers WHERE pk > :indexed"), {"indexed": indexed}
        ).scalar_one()
        return pks, int(count)


def _sqlite_hits(conn: Connection, terms: tuple[str, ...], *, want: int) -> list[int]:
    """The first ``want`` paper pks in answer order: title hits, then the rest, newest first.

    Each FTS5 query walks the index in rowid order and stops after ``want`` rows, so
    the cost does not grow with the number of matches (no bm25: its idf alone reads
    every match of every term).
    """
    anywhere = build_fts_query(terms)
    in_title = f"{{title}} : ({anywhere})"
    tiers = (in_title, f"({anywhere}) NOT {in_title}")
    hits: list[int] = []
    for match in tiers:
        if len(hits) >= want:
            break
        rows = conn.execute(
            sa.text(
                "SELECT rowid FROM papers_fts WHERE papers_fts MATCH :match "
                "ORDER BY rowid DESC LIMIT :want"
            ),
            {"match": match, "want": want - len(hits)},
        )
        hits.extend(row[0] for row in rows)
    return hits


def search_papers(store: SqlStore, text: str, *, limit: int = 5, offset: int = 0) -> SearchPage:
    """Papers matching every word of ``text``: ``limit`` of them after ``offset``.

    Order: papers with every word in the title first, then the others; newest first
    (most recently stored) within each group.
    """
    terms = parse_search_terms(text)
    offset = max(offset, 0)
    if not terms or limit < 1:
        return SearchPage(papers=[], has_more=False, terms=terms)
    want = offset + limit + 1
    dialect = store.engine.dialect.name
    # a backlog (a first search after an upgrade) in steps, each its own transaction; then
    # what was committed since, in the search's own (nothing, usually: no lock taken)
    catch_up_search_index(store)
    with store.transaction() as conn:
        sync_search_index(conn, limit=default_step(dialect))
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                pks = _sqlite_hits(conn, terms, want=want)[offset:]
            else:
                pks = _postgres_hits(conn, terms, offset=offset, want=limit + 1)
            rows = conn.execute(sa.select(*_PAPER_COLUMNS).where(papers.c.pk.in_(pks))).all()
            by_pk = {row.pk: row for row in rows}
            ordered = [by_pk[pk] for pk in pks if pk in by_pk]
        else:
            ordered = list(conn.execute(_portable_query(terms, offset, limit)).all())
    found = [_paper_from_row(row) for row in ordered[:limit]]
    return SearchPage(papers=found, has_more=len(ordered) > limit, terms=terms)


def _postgres_hits(
    conn: Connection, terms: tuple[str, ...], *, offset: int, want: int
) -> list[int]:
    """``want`` paper pks after ``offset`` in answer order, from ``paper_search`` alone
    (the title's tsvector is stored beside the document's: nothing is parsed per match)."""
    config = sa.text("'english'::regconfig")
    tsquery = sa.func.plainto_tsquery(config, " ".join(terms))
    tier = sa.case((_search_table.c.title.op("@@")(tsquery), 0), else_=1)
    query = (
        sa.select(_search_table.c.paper_pk)
        .where(_search_table.c.document.op("@@")(tsquery))
        .order_by(tier, _search_table.c.paper_pk.desc())
        .limit(want)
        .offset(offset)
    )
    return list(conn.execute(query).scalars())


def _portable_query(terms: tuple[str, ...], offset: int, limit: int) -> Any:
    """Any SQL database but SQLite and PostgreSQL (substrings), in the same order."""
    query: Any = sa.select(*_PAPER_COLUMNS)
    in_title = sa.and_(*(papers.c.title.icontains(t, autoescape=True) for t in terms))
    for term in terms:
        query = query.where(
            sa.or_(
                papers.c.title.icontains(term, autoescape=True),
                papers.c.abstract.icontains(term, autoescape=True),
            )
        )
    tier = sa.case((in_title, 0), else_=1)
    return query.order_by(tier, papers.c.pk.desc()).limit(limit + 1).offset(offset)
