"""Insert-ready rows for one parsed drop, built where it was parsed (a worker process).

``prepare_drop`` merges the drop's duplicate entries (``merge_batch``, as the store
would) and turns each distinct paper into a ``papers`` row and each entry into a
``paper_sources`` row, values already bound for the database's driver (dates and
times as the driver takes them). The writer (``digestbot.store.rows.upsert_rows``)
then only looks up which of them are stored already and inserts the rest.

Pure. The drop's text does not travel with the rows (half the bytes between the
processes): for the few papers that turn out to be stored already (they take the
merge path), ``load_slot_papers`` reads the file again and checks its SHA-256.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from digestbot.errors import ParseError
from digestbot.models import Paper
from digestbot.sources.drops import DropParse, parse_drop_bytes
from digestbot.store.schema import paper_sources, papers
from digestbot.store.sql import ROW_COLUMNS, bind_rows, merge_batch, naive_utc, row_values

SOURCE_COLUMNS = ("kind", "name", "entry", "line", "seen_at")
_TID = ROW_COLUMNS.index("tid")


@dataclass(frozen=True, slots=True)
class PaperRows:
    """One drop's papers and sources as rows; index ``i`` of the paper lists is slot ``i``."""

    name: str
    sha256: str  # the content the rows came from, and its mtime (dates yearless dates)
    modified: datetime
    rows: list[tuple[Any, ...]]  # ``ROW_COLUMNS`` order (no pk), bound for the driver
    title_ids: list[str]  # per slot: ``tid``, looked up to find a stored paper by title
    arxiv_ids: list[str | None]  # per slot
    source_slots: list[int]  # per entry with a source: the slot of its paper
    sources: list[tuple[Any, ...]]  # per entry: ``SOURCE_COLUMNS`` values, bound
    merged: int  # entries merged into an earlier entry of the same drop
    # per slot: the acronyms its title and abstract define (``ranking.acronyms``), found
    # here in the parsing worker, counted by the writer for the papers that are new
    # (each ``ranking.acronyms.Definition``'s fields as a plain tuple)
    definitions: list[tuple[tuple[str, str, str, str, str], ...]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.source_slots and not self.rows

    def load_slot_papers(self) -> list[Paper]:
        """The distinct papers as ``Paper`` values, from the file read again (for the rare
        papers already stored, which go through ``SqlStore.upsert_papers``).

        Raises ``ParseError`` if the file is gone or changed since the rows were built.
        """
        try:
            data = Path(self.name).read_bytes()
        except OSError as exc:
            raise ParseError(
                f"cannot read it again: {exc.strerror or exc}", source=self.name
            ) from None
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ParseError(
                "changed while being ingested; it is read again next time", source=self.name
            )
        parsed = parse_drop_bytes(data, name=self.name, modified=self.modified)
        return merge_batch(parsed.papers).slots


def _title_id(paper: Paper) -> str | None:
    """The paper's title id if its id is one: a parsed drop's paper has no arXiv id and
    no id of its own, so ``canonical_id`` made its id from its title (the slot's key)."""
    return paper.id if paper.arxiv_id is None and paper.id.startswith("t-") else None


@lru_cache(maxsize=8)
def dialect_named(drivername: str) -> sa.engine.Dialect:
    """A dialect object (no connection) for binding values: ``sqlite``, ``postgresql+psycopg``."""
    return sa.engine.URL.create(drivername).get_dialect()()


def prepare_drop(
    parsed: DropParse,
    *,
    name: str,
    sha256: str,
    modified: datetime,
    now: datetime,
    drivername: str,
) -> PaperRows:
    """The rows ``upsert_rows`` writes for a parsed drop, first seen ``now``."""
    # imported here: ``digestbot.ranking`` imports the store, which imports this module's
    from digestbot.ranking.acronyms import paper_definitions

    dialect = dialect_named(drivername)
    now = naive_utc(now)
    batch = merge_batch(parsed.papers)
    raw = [
        # a drop's paper has no arXiv id: its id is the title id of its key, computed once
        row_values(paper, title_key=key, now=now, tid=_title_id(paper))
        for paper, key in zip(batch.slots, batch.title_keys, strict=True)
    ]
    source_slots: list[int] = []
    source_rows: list[tuple[Any, ...]] = []
    for paper, slot in zip(parsed.papers, batch.slot_of, strict=True):
        ref = paper.source
        if ref is not None:
            source_slots.append(slot)
            source_rows.append((ref.kind, ref.name, ref.entry, ref.line, now))
    return PaperRows(
        name=name,
        sha256=sha256,
        modified=modified,
        rows=bind_rows(dialect, papers, ROW_COLUMNS, raw),
        title_ids=[row[_TID] for row in raw],
        arxiv_ids=[paper.arxiv_id for paper in batch.slots],
        source_slots=source_slots,
        sources=bind_rows(dialect, paper_sources, SOURCE_COLUMNS, source_rows),
        merged=batch.merged,
        # as plain tuples: the writer then needs no ``digestbot.ranking`` to read them
        definitions=[
            tuple(
                (d.short_key, d.long_key, d.spelling, d.short, d.long)
                for d in paper_definitions(p.title, p.abstract)
            )
            for p in batch.slots
        ],
    )
