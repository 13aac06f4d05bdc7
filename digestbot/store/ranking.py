"""The ranker's reads: papers to index since a watermark, texts and listings by pk.

The lexical index (``digestbot.ranking.persist``) is derived from these; the
database stays the source of truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digestbot.ids import normalize_title, title_id_of_key
from digestbot.models import Paper
from digestbot.ranking.lexical import Document
from digestbot.store.aliases import aliased_pks
from digestbot.store.embeddings import embedding_changes
from digestbot.store.schema import VECTOR_CHANGES, papers
from digestbot.store.sql import _PAPER_COLUMNS, SqlStore, _chunks, _paper_from_row, naive_utc, utc


@dataclass(frozen=True, slots=True)
class IndexBatch:
    documents: list[Document]
    watermark: datetime | None  # the newest updated_at indexed
    max_pk: int  # the highest pk indexed


# what the index reads of a paper (``_document`` turns such a row into a ``Document``)
_DOCUMENT_COLUMNS = (
    papers.c.pk,
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.upvotes,
    papers.c.published,
)


def _document(r: Any) -> Document:
    """A row of ``_DOCUMENT_COLUMNS`` as the index reads it."""
    return Document(
        pk=r.pk,
        title=r.title,
        abstract=r.abstract,
        upvotes=r.upvotes,
        published=r.published,
        id=r.id,
    )


def load_index_batch(
    store: SqlStore,
    *,
    since: datetime | None,
    max_pk: int,
    after: int = 0,
    limit: int | None = None,
) -> IndexBatch:
    """Papers added (pk above ``max_pk``) or changed (``updated_at`` after ``since``).

    In pk order; ``after`` and ``limit`` page through them (keyset: pk above ``after``).
    """
    query = sa.select(*_DOCUMENT_COLUMNS, papers.c.updated_at).order_by(papers.c.pk)
    if since is not None:
        query = query.where(sa.or_(papers.c.updated_at > naive_utc(since), papers.c.pk > max_pk))
    if after:
        query = query.where(papers.c.pk > after)
    if limit is not None:
        query = query.limit(limit)
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return IndexBatch([], since, max_pk)
    newest = max(r.updated_at for r in rows)
    docs = [_document(r) for r in rows]
    mark = utc(newest)
    if since is not None and mark is not None and mark < since:
        mark = since
    return IndexBatch(docs, mark, max(max_pk, max(r.pk for r in rows)))


# one statement for every call (an expanding parameter): nothing to build per call
_TEXTS = sa.select(papers.c.pk, papers.c.title, papers.c.abstract).where(
    papers.c.pk.in_(sa.bindparam("pks", expanding=True))
)


def load_texts(store: SqlStore, pks: Sequence[int]) -> dict[int, tuple[str, str]]:
    out: dict[int, tuple[str, str]] = {}
    if not pks:
        return out
    with store.transaction() as conn:
        for part in _chunks(list(pks)):
            for row in conn.execute(_TEXTS, {"pks": list(part)}):
                out[row.pk] = (row.title, row.abstract)
    return out


def load_listing(store: SqlStore) -> list[tuple[int, Paper]]:
    """Every paper, in id order, with id, title and upvotes only: cheap for 100k rows."""
    query = sa.select(papers.c.pk, papers.c.id, papers.c.title, papers.c.upvotes).order_by(
        papers.c.id
    )
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    return [
        (pk, Paper(id=pid, title=title, abstract="", upvotes=upvotes))
        for pk, pid, title, upvotes in rows
    ]


def load_papers_by_pk(store: SqlStore, pks: Sequence[int]) -> dict[int, Paper]:
    """Stored papers by row key (a ranking's, or a digest's papers: the same paper whatever
    its id became since, a ``t-…`` id that gained its arXiv id)."""
    out: dict[int, Paper] = {}
    with store.transaction() as conn:
        for part in _chunks(list(pks)):
            for row in conn.execute(sa.select(*_PAPER_COLUMNS).where(papers.c.pk.in_(part))):
                out[row.pk] = _paper_from_row(row)
    return out


def resolve_paper_pks(store: SqlStore, names: Sequence[str]) -> dict[str, int]:
    """``like`` entries (paper id, the ``t-…`` id of a paper that since gained an arXiv
    id, or exact title, or an earlier title or ``t-…`` id of a retitled arXiv paper:
    ``store.aliases``) -> pk, for those that are stored. A title with no letter or digit
    (``???``: such papers are keyed by their link or text) names the paper of that exact
    title."""
    if not names:
        return {}
    keys = {name: normalize_title(name) for name in names}
    found: dict[str, int] = {}
    with store.transaction() as conn:
        rows: list[Any] = []
        for part in _chunks(list(names)):
            ids = [n.strip() for n in part]
            symbols = [n.strip() for n in part if not keys[n]]
            cols = (papers.c.pk, papers.c.id, papers.c.tid, papers.c.title_key, papers.c.title)
            rows += conn.execute(
                sa.select(*cols).where(
                    sa.or_(
                        papers.c.id.in_(ids),
                        papers.c.tid.in_(ids),
                        papers.c.title_key.in_([keys[n] for n in part if keys[n]]),
                        papers.c.title.in_(symbols),
                    )
                )
            ).all()
    by_id = {r.id: r.pk for r in rows}
    by_title: dict[str, int] = {}
    by_tid: dict[str, int] = {}
    for r in sorted(rows, key=lambda r: r.pk):
        by_title.setdefault(r.title_key, r.pk)
        by_title.setdefault("\0" + r.title.strip(), r.pk)
        by_tid.setdefault(r.tid, r.pk)
    for name in names:
        key = keys[name] or "\0" + name.strip()
        pk = by_id.get(name.strip(), by_tid.get(name.strip(), by_title.get(key)))
        if pk is not None:
            found[name] = pk
    missing = [name for name in names if name not in found]
    if missing:  # an earlier title of a retitled arXiv paper, or its ``t-…`` id then
        tids = {n: [n.strip()] + ([title_id_of_key(keys[n])] if keys[n] else []) for n in missing}
        with store.transaction() as conn:
            aliased = aliased_pks(conn, [t for ts in tids.values() for t in ts])
        for name, candidates in tids.items():
            pk = next((aliased[t] for t in candidates if t in aliased), None)
            if pk is not None:
                found[name] = pk
    return found


def pks_of_ids(store: SqlStore, ids: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    if not ids:
        return out
    with store.transaction() as conn:
        for part in _chunks(list(ids)):
            for row in conn.execute(
                sa.select(papers.c.pk, papers.c.id).where(papers.c.id.in_(part))
            ):
                out[row.id] = row.pk
    return out


def count_papers(store: SqlStore) -> int:
    return store.count_papers()


def load_pks(store: SqlStore) -> list[int]:
    with store.transaction() as conn:
        return [int(pk) for (pk,) in conn.execute(sa.select(papers.c.pk))]


def load_index_documents_by_pk(store: SqlStore, pks: Sequence[int]) -> list[Document]:
    out: list[Document] = []
    query = sa.select(*_DOCUMENT_COLUMNS)
    with store.transaction() as conn:
        for part in _chunks(list(pks)):
            out += map(_document, conn.execute(query.where(papers.c.pk.in_(part))))
    return out


def database_instance(store: SqlStore) -> str | None:
    """The random id this database was given when made (``embedding_changes.instance``):
    another database at the same URL has another; None where the row was removed."""
    query = sa.select(embedding_changes.c.instance).where(
        embedding_changes.c.name == VECTOR_CHANGES
    )
    with store.transaction() as conn:
        found = conn.execute(query).scalar()
    return None if found is None else str(found)


def id_at_pk(store: SqlStore, pk: int) -> str | None:
    """The id of the paper stored under ``pk`` (None: none is)."""
    with store.transaction() as conn:
        found = conn.execute(sa.select(papers.c.id).where(papers.c.pk == pk)).scalar()
    return None if found is None else str(found)


def ids_at_pk(store: SqlStore, pk: int) -> set[str]:
    """The id and the title id (``tid``) of the paper stored under ``pk`` (empty: none
    is): a ``t-…`` id the paper had before it gained an arXiv id is its ``tid``."""
    query = sa.select(papers.c.id, papers.c.tid).where(papers.c.pk == pk)
    with store.transaction() as conn:
        row = conn.execute(query).first()
    return set() if row is None else {str(v) for v in row if v is not None}
