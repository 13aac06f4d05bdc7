"""Full-text search over papers (title, abstract).

SQLite: an FTS5 external-content table ``papers_fts`` over ``papers``, created (and
filled from the existing papers) the first time the schema is created on a
database that lacks it. New papers are indexed in bulk after an ingest and before
any search (``sync_search_index``): FTS5 indexing costs several times the insert
of the paper itself, so it is kept out of the per-file write path. PostgreSQL: a GIN index on
``to_tsvector('english', title || ' ' || abstract)`` queried with
``plainto_tsquery``. Any other database: every word as a substring (slow, correct).

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

import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.models import Paper
from digestbot.store.schema import metadata, papers
from digestbot.store.sql import _PAPER_COLUMNS, SqlStore, _paper_from_row

MAX_TERMS = 16  # bounds the cost of one query
MAX_TERM_CHARS = 64

_WORDISH = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The FTS5 index trails the papers table: ingest writes papers at full speed and
# ``sync_search_index`` indexes the rows past a watermark (``schema_info`` key
# ``fts_indexed_pk``) in one statement, after an ingest and before every search.
# Updates and deletes of rows already indexed are mirrored by triggers.
_WATERMARK = "fts_indexed_pk"
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
_PG_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_papers_fulltext ON papers "
    "USING GIN (to_tsvector('english', title || ' ' || abstract))"
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
    """``after_create`` hook on the shared metadata: make the index if it is missing."""
    del target
    dialect = connection.dialect.name
    if dialect == "sqlite":
        exists = connection.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='papers_fts'"
        ).first()
        if exists is None:
            for statement in _SQLITE_DDL:
                connection.exec_driver_sql(statement)
    elif dialect == "postgresql":
        connection.exec_driver_sql(_PG_INDEX)


sa.event.listen(metadata, "after_create", _create_search_index)


def sync_search_index(conn: Connection, *, limit: int | None = None) -> int:
    """Index the papers stored since the last sync (SQLite; at most ``limit`` of them,
    by pk); returns how many. The first statement takes the write lock, so two
    processes never index the same rows twice. Other databases index on write:
    nothing to do.
    """
    if conn.dialect.name != "sqlite":
        return 0
    conn.exec_driver_sql("UPDATE schema_info SET value = value WHERE key = ?", (_WATERMARK,))
    indexed = conn.exec_driver_sql(
        "SELECT CAST(value AS INTEGER) FROM schema_info WHERE key = ?", (_WATERMARK,)
    ).scalar()
    if indexed is None:  # no search index in this database
        return 0
    newest = conn.exec_driver_sql("SELECT COALESCE(MAX(pk), 0) FROM papers").scalar_one()
    if limit is not None:
        newest = min(newest, indexed + limit)
    if newest <= indexed:
        return 0
    conn.exec_driver_sql(
        "INSERT INTO papers_fts(rowid, title, abstract) "
        "SELECT pk, title, abstract FROM papers WHERE pk > ? AND pk <= ?",
        (indexed, newest),
    )
    conn.exec_driver_sql(
        "UPDATE schema_info SET value = ? WHERE key = ?", (str(newest), _WATERMARK)
    )
    return int(newest - indexed)


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
    with store.transaction() as conn:
        if dialect == "sqlite":
            sync_search_index(conn)
            pks = _sqlite_hits(conn, terms, want=want)[offset:]
            rows = conn.execute(sa.select(*_PAPER_COLUMNS).where(papers.c.pk.in_(pks))).all()
            by_pk = {row.pk: row for row in rows}
            ordered = [by_pk[pk] for pk in pks if pk in by_pk]
        else:
            ordered = list(conn.execute(_portable_query(dialect, terms, offset, limit)).all())
    found = [_paper_from_row(row) for row in ordered[:limit]]
    return SearchPage(papers=found, has_more=len(ordered) > limit, terms=terms)


def _portable_query(dialect: str, terms: tuple[str, ...], offset: int, limit: int) -> Any:
    """PostgreSQL (tsvector) or any SQL database (substrings), in the same order as SQLite."""
    query: Any
    in_title: sa.ColumnElement[bool]
    if dialect == "postgresql":
        config = sa.text("'english'::regconfig")
        document = sa.func.to_tsvector(
            config,
            papers.c.title.op("||")(sa.literal_column("' '")).op("||")(papers.c.abstract),
        )
        tsquery = sa.func.plainto_tsquery(config, " ".join(terms))
        in_title = sa.func.to_tsvector(config, papers.c.title).op("@@")(tsquery)
        query = sa.select(*_PAPER_COLUMNS).where(document.op("@@")(tsquery))
    else:
        query = sa.select(*_PAPER_COLUMNS)
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
