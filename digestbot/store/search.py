"""Full-text search over papers (title, abstract).

SQLite: an FTS5 external-content table ``papers_fts`` over ``papers``, kept in
sync by triggers, created (and filled from the existing papers) the first time
the schema is created on a database that lacks it. PostgreSQL: a GIN index on
``to_tsvector('english', title || ' ' || abstract)`` queried with
``plainto_tsquery``. Any other database: every word as a substring (slow, correct).

User text never reaches the FTS query language: each whitespace-separated chunk
becomes one FTS5 *string* (a quoted phrase, ``"`` doubled), so ``AND``, ``(``,
``*``, ``NEAR`` and quotes are searched as text. Chunks with no letter or digit
are dropped; a query with nothing left finds nothing.

Ranking is bm25 (title weighted above abstract) over at most ``CANDIDATES``
matches, the most recently stored ones: a query matching more papers than that
(a word in half the archive) is answered from the newest of them, in bounded time.
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
TITLE_WEIGHT = 4.0  # bm25 column weight of the title against the abstract
CANDIDATES = 5_000  # a query ranks at most this many matches: the most recently stored

_WORDISH = re.compile(r"\w", re.UNICODE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE papers_fts USING fts5(title, abstract, content='papers', "
    "content_rowid='pk', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER IF NOT EXISTS papers_fts_ai AFTER INSERT ON papers BEGIN "
    "INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.pk, new.title, new.abstract); "
    "END",
    "CREATE TRIGGER IF NOT EXISTS papers_fts_ad AFTER DELETE ON papers BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.pk, old.title, old.abstract); END",
    "CREATE TRIGGER IF NOT EXISTS papers_fts_au AFTER UPDATE OF title, abstract ON papers BEGIN "
    "INSERT INTO papers_fts(papers_fts, rowid, title, abstract) "
    "VALUES ('delete', old.pk, old.title, old.abstract); "
    "INSERT INTO papers_fts(rowid, title, abstract) VALUES (new.pk, new.title, new.abstract); "
    "END",
    "INSERT INTO papers_fts(papers_fts) VALUES ('rebuild')",
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


def search_papers(
    store: SqlStore, text: str, *, limit: int = 5, offset: int = 0, candidates: int = CANDIDATES
) -> SearchPage:
    """The best ``limit`` papers for ``text`` after ``offset``, most relevant first."""
    terms = parse_search_terms(text)
    if not terms or limit < 1:
        return SearchPage(papers=[], has_more=False, terms=terms)
    dialect = store.engine.dialect.name
    cols = _PAPER_COLUMNS
    query: Any
    if dialect == "sqlite":
        # bm25 over the newest CANDIDATES matches only: a word in half the papers would
        # otherwise score half the table (FTS5 walks rowids in order without scoring them)
        top = (
            sa.text(
                "SELECT hit, score FROM (SELECT rowid AS hit, "
                "bm25(papers_fts, :title_weight, 1.0) AS score FROM papers_fts "
                "WHERE papers_fts MATCH :match ORDER BY rowid DESC LIMIT :cap) "
                "ORDER BY score, hit DESC LIMIT :page OFFSET :skip"
            )
            .bindparams(
                title_weight=TITLE_WEIGHT,
                match=build_fts_query(terms),
                cap=candidates,
                page=limit + 1,
                skip=max(offset, 0),
            )
            .columns(hit=sa.Integer, score=sa.Float)
            .subquery("top")
        )
        query = (
            sa.select(*cols)
            .join_from(papers, top, papers.c.pk == top.c.hit)
            .order_by(top.c.score, top.c.hit.desc())
        )
    elif dialect == "postgresql":
        document = sa.func.to_tsvector(
            sa.text("'english'::regconfig"),
            papers.c.title.op("||")(sa.literal_column("' '")).op("||")(papers.c.abstract),
        )
        tsquery = sa.func.plainto_tsquery(sa.text("'english'::regconfig"), " ".join(terms))
        query = (
            sa.select(*cols)
            .where(document.op("@@")(tsquery))
            .order_by(sa.func.ts_rank(document, tsquery).desc(), papers.c.pk.desc())
        )
    else:
        query = sa.select(*cols).order_by(papers.c.pk.desc())
        for term in terms:
            query = query.where(
                sa.or_(
                    papers.c.title.icontains(term, autoescape=True),
                    papers.c.abstract.icontains(term, autoescape=True),
                )
            )
    if dialect != "sqlite":  # (SQLite pages inside the ranked subquery)
        query = query.limit(limit + 1).offset(max(offset, 0))
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    found = [_paper_from_row(row) for row in rows[:limit]]
    return SearchPage(papers=found, has_more=len(rows) > limit, terms=terms)
