"""The lean writer: one drop's prepared rows (``digestbot.sources.rows``) into the store.

A few statements per file, whatever its size: which of its papers are stored
already (index-only lookups by arXiv id, title id and earlier titles of
retitled arXiv papers: ``store.aliases``), one ``executemany`` for the
new papers and one for the file's entries. Primary keys of new papers follow the
drop's order: on SQLite they are given explicitly (``MAX(pk)`` + n, under the write
lock taken first); elsewhere the database assigns them and one range query reads
them back. Papers already stored take the merge path (``SqlStore.upsert_papers``),
so both paths store the same thing. The caller holds the file's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.sources.rows import SOURCE_COLUMNS, PaperRows
from digestbot.store.acronyms import count_found
from digestbot.store.aliases import aliased_pks
from digestbot.store.schema import paper_sources, papers
from digestbot.store.sql import (
    ROW_COLUMNS,
    SqlStore,
    UpsertCounts,
    _chunks,
    bulk_insert,
    forget_entries,
    param_mark,
    take_write_lock,
)


def _stored_slots(conn: Connection, prepared: PaperRows) -> set[int]:
    """Slots whose arXiv id or title id is stored already, or whose title id is an earlier
    title of a stored paper (``store.aliases``): index-only queries."""
    found: set[int] = set()
    for column, keys in (("arxiv_id", prepared.arxiv_ids), ("tid", prepared.title_ids)):
        wanted = [key for key in dict.fromkeys(keys) if key]
        hits = set(_present(conn, column, wanted)) if wanted else set()
        if hits:  # rare: a paper seen before
            found.update(slot for slot, key in enumerate(keys) if key in hits)
    rest = [tid for slot, tid in enumerate(prepared.title_ids) if tid and slot not in found]
    aliased = aliased_pks(conn, rest) if rest else {}
    if aliased:  # rarer: a retitled arXiv paper under its earlier title
        found.update(slot for slot, tid in enumerate(prepared.title_ids) if tid in aliased)
    return found


def _present(conn: Connection, column: str, values: Sequence[str]) -> list[str]:
    """Which ``values`` the indexed ``papers`` column holds: ``SELECT col ... IN (...)`` as
    driver SQL (the index answers alone; SQLAlchemy's expanding IN costs more than the
    query here), in the dialect's quoting and paramstyle."""
    mark = param_mark(conn.dialect)
    if mark is None:  # pragma: no cover - numeric/named drivers
        col = papers.c[column]
        query = sa.select(col)
        return [v for part in _chunks(values) for (v,) in conn.execute(query.where(col.in_(part)))]
    quote = conn.dialect.identifier_preparer.quote
    out: list[str] = []
    for part in _chunks(values):
        marks = ", ".join([mark] * len(part))
        # the column name is ours, values travel as parameters
        sql = f"SELECT {quote(column)} FROM papers WHERE {quote(column)} IN ({marks})"  # noqa: S608
        out.extend(row[0] for row in conn.exec_driver_sql(sql, tuple(part)))
    return out


def _insert_new(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> list[int]:
    """Insert new papers in order; their primary keys, in the same order."""
    before = conn.execute(sa.select(sa.func.coalesce(sa.func.max(papers.c.pk), 0))).scalar_one()
    if conn.dialect.name == "sqlite":
        pks = list(range(before + 1, before + 1 + len(rows)))
        bulk_insert(
            conn,
            papers,
            ("pk", *ROW_COLUMNS),
            [(pk, *row) for pk, row in zip(pks, rows, strict=True)],
            bound=True,
        )
        return pks
    bulk_insert(conn, papers, ROW_COLUMNS, rows, bound=True)
    # Later keys than any stored before; rows of other writers are told apart by id.
    pk_by_id = dict(
        (row[0], row[1])
        for row in conn.execute(sa.select(papers.c.id, papers.c.pk).where(papers.c.pk > before))
    )
    return [pk_by_id[row[0]] for row in rows]


def _replace_sources(
    conn: Connection, prepared: PaperRows, pk_of_slot: Sequence[int | None]
) -> None:
    """The file's entries point at their papers (an entry seen before is replaced)."""
    if not prepared.sources:
        return
    kinds = {(row[0], row[1]) for row in prepared.sources}
    for kind, name in sorted(kinds):
        seen = conn.execute(
            sa.select(paper_sources.c.pk)
            .where(paper_sources.c.kind == kind, paper_sources.c.name == name)
            .limit(1)
        ).first()
        if seen is None:
            continue
        entries = [row[2] for row in prepared.sources if (row[0], row[1]) == (kind, name)]
        forget_entries(conn, kind, name, entries)
    bulk_insert(
        conn,
        paper_sources,
        ("paper_pk", *SOURCE_COLUMNS),
        [
            (pk_of_slot[slot], *row)
            for slot, row in zip(prepared.source_slots, prepared.sources, strict=True)
        ],
        bound=True,
    )


def upsert_rows(
    store: SqlStore, conn: Connection, prepared: PaperRows, *, now: datetime
) -> UpsertCounts:
    """Write one drop's papers and entries; new and merged counts as ``upsert_papers``."""
    # Take the write lock before reading MAX(pk): no other writer can slip in between.
    take_write_lock(conn)
    pk_of_slot: list[int | None] = [None] * len(prepared.rows)
    new, merged = 0, prepared.merged
    stored = _stored_slots(conn, prepared)
    if stored:
        slots = sorted(stored)
        known = prepared.load_slot_papers()
        counts, pks = store.upsert_papers(conn, [known[i] for i in slots], now=now)
        for index, slot in enumerate(slots):
            pk_of_slot[slot] = pks[index]
        new, merged = new + counts.new, merged + counts.merged
    fresh = [slot for slot in range(len(prepared.rows)) if slot not in stored]
    if fresh:
        count_found(conn, [prepared.definitions[slot] for slot in fresh])
        for slot, pk in zip(
            fresh, _insert_new(conn, [prepared.rows[slot] for slot in fresh]), strict=True
        ):
            pk_of_slot[slot] = pk
        new += len(fresh)
    _replace_sources(conn, prepared, pk_of_slot)
    return UpsertCounts(new=new, merged=merged)
