"""``SqlStore``: every read and write of papers and ingested files.

One readable API over SQLAlchemy Core; the rest of digestbot never writes SQL.
Batches are merged in memory and written with ``executemany``: no query per
paper. Each ingested file is one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from digestbot.errors import NotFoundError, StoreError
from digestbot.ids import (
    doi_key,
    find_doi,
    is_generic_title,
    link_identity,
    link_key,
    normalize_title,
    parse_arxiv_id,
    text_key,
    title_id,
    title_id_of_key,
)
from digestbot.models import Paper, SourceRef
from digestbot.store.acronyms import count_definitions
from digestbot.store.aliases import aliased_pks, is_alias_key, record_aliases
from digestbot.store.schema import (
    DATA_MIGRATIONS,
    MIGRATIONS,
    NEW_DATABASE_STEPS,
    SCHEMA_VERSION,
    ingested_files,
    is_older_than,
    metadata,
    paper_sources,
    papers,
    schema_info,
    stored_version,
)

log = logging.getLogger(__name__)

_CHUNK = 500  # bound on the number of parameters in one IN (...)


def utc(value: datetime | None) -> datetime | None:
    """Stored naive-UTC -> aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: datetime) -> datetime:
    """Aware (any zone) -> naive UTC for storage. Naive values are taken as UTC."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def bind_rows(
    dialect: sa.engine.Dialect,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> list[tuple[Any, ...]]:
    """Rows with each value passed through its column type's bind processor (dates and
    times become what the driver takes): pure, so worker processes can do it."""
    processors = [
        (index, proc)
        for index, name in enumerate(columns)
        if (proc := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None
    ]
    if not processors:
        return [tuple(row) for row in rows]
    # Values repeat a lot (every row's ``now``, common dates): convert each once.
    memo: list[dict[Any, Any]] = [{} for _ in processors]
    steps = [(index, proc, seen) for (index, proc), seen in zip(processors, memo, strict=True)]
    converted: list[tuple[Any, ...]] = []
    for row in rows:
        values = list(row)
        for index, proc, seen in steps:
            value = values[index]
            if value is not None:
                done = seen.get(value)
                if done is None:
                    done = seen[value] = proc(value)
                values[index] = done
        converted.append(tuple(values))
    return converted


def param_mark(dialect: sa.engine.Dialect) -> str | None:
    """The driver's positional parameter mark (``?`` or ``%s``), or None for a driver
    whose paramstyle is not positional (numeric, named)."""
    return {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)


def insert_sql(dialect: sa.engine.Dialect, table: sa.Table, columns: Sequence[str]) -> str | None:
    """``INSERT INTO t (a, b) VALUES (?, ?)`` in the dialect's quoting and paramstyle, or
    None for a driver whose paramstyle is not positional."""
    mark = param_mark(dialect)
    if mark is None:  # pragma: no cover - numeric/named drivers
        return None
    quote = dialect.identifier_preparer.quote
    # identifiers come from our own Table objects, values travel as parameters
    names = ", ".join(quote(c) for c in columns)
    marks = ", ".join([mark] * len(columns))
    return f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"  # noqa: S608


def bulk_insert(
    conn: Connection,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    bound: bool = False,
) -> None:
    """``executemany`` straight to the driver: SQLAlchemy's per-row overhead is most of
    the cost of a large insert. Values pass through each column type's bind processor
    (unless ``bound``: ``bind_rows`` did it already), and the SQL is built with the
    dialect's quoting and paramstyle, so it stays portable. On PostgreSQL with psycopg 3
    the rows go in with ``COPY ... FROM STDIN`` instead (``copy_rows``)."""
    if not rows:
        return
    dialect = conn.dialect
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        copy_rows(conn, table, columns, rows if bound else bind_rows(dialect, table, columns, rows))
        return
    sql = insert_sql(dialect, table, columns)
    if sql is None:  # pragma: no cover - numeric/named drivers: let SQLAlchemy do it
        conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    conn.exec_driver_sql(sql, rows if bound else bind_rows(dialect, table, columns, rows))


def copy_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Rows into a PostgreSQL table with ``COPY FROM STDIN`` (psycopg 3), in the caller's
    transaction: one statement for the lot, where a pipelined ``executemany`` still runs
    one INSERT per row (measured: 100,000 papers and their entries ~2.5x faster)."""
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    cursor = conn.connection.cursor()
    try:
        # identifiers come from our own Table objects, values travel as COPY data
        with cursor.copy(f"COPY {quote(table.name)} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:  # as SQLAlchemy raises a driver's error
        raise sa.exc.DBAPIError.instance(
            f"COPY {table.name}", None, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        cursor.close()


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class UpsertCounts:
    new: int = 0
    merged: int = 0


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    size: int
    sha256: str
    ingested_at: datetime
    status: str
    error: str | None
    entries: int
    papers_new: int
    papers_merged: int
    warnings: tuple[str, ...] = ()


def merge_papers(old: Paper, new: Paper) -> Paper:
    """One paper seen twice: highest upvotes, earliest first_seen, missing fields filled.

    A newer arXiv version (both versions known, ``new`` higher) brings its title and
    abstract: a replacement announcement updates the text. Otherwise the longer
    abstract wins. ``extra`` keys are merged, the newer value winning (stars change).
    """
    arxiv_id = old.arxiv_id or new.arxiv_id
    versions = [v for v in (old.arxiv_version, new.arxiv_version) if v is not None]
    is_newer = (
        old.arxiv_version is not None
        and new.arxiv_version is not None
        and new.arxiv_version > old.arxiv_version
    )
    urls = old.urls + tuple(u for u in new.urls if u not in old.urls)
    seen = [t for t in (old.first_seen, new.first_seen) if t is not None]
    last = [t for t in (old.last_seen, new.last_seen) if t is not None]
    if is_newer and new.abstract:
        abstract = new.abstract
    else:
        abstract = old.abstract if len(old.abstract) >= len(new.abstract) else new.abstract
    return replace(
        old,
        title=(new.title if is_newer and new.title else old.title or new.title),
        abstract=abstract,
        authors_count=old.authors_count if old.authors_count is not None else new.authors_count,
        organization=old.organization or new.organization,
        published=old.published or new.published,
        upvotes=max(old.upvotes, new.upvotes),
        urls=urls,
        authors=(new.authors if is_newer and new.authors else old.authors or new.authors),
        arxiv_id=arxiv_id,
        arxiv_version=max(versions) if versions else None,
        first_seen=min(seen) if seen else None,
        last_seen=max(last) if last else None,
        id=arxiv_id or old.id,
        extra={**old.extra, **new.extra} if new.extra else old.extra,
    )


def _has_link(paper: Paper, links: Iterable[str]) -> bool:
    """Whether the paper's own link is one of ``links`` (as ``ids.link_identity``)."""
    own = link_identity(paper.own_link)
    return any(link_identity(url) == own for url in links)


def rekey_apart(paper: Paper) -> tuple[Paper, str] | None:
    """A feed item without an arXiv id, keyed by its title, as a paper of its own: keyed
    (and its id made) by its DOI, else its own link, else (a link its feed gives other
    items too: ``extra["shared_link"]``) its title and abstract. None for any other paper."""
    source = paper.source
    if paper.arxiv_id or source is None or source.kind != "feed":
        return None
    key = doi_key(paper.doi) or link_key(paper.own_link)
    if key is None and paper.extra.get("shared_link"):  # its feed links every item alike
        key = text_key(paper.title, paper.abstract)
    if key is None or ":" in paper.title_key:  # no DOI or link, or keyed apart already
        return None
    return replace(paper, id=title_id_of_key(key)), key


def listed_apart(new: Paper, old: Paper, old_entries: Iterable[str]) -> bool:
    """Whether ``new``, matching ``old`` by title, is another paper of the same feed: one
    feed lists one paper under one entry and link, so an item whose entry (guid) and
    own link both differ from those of the paper the same feed gave that title before
    is another item with the same title ("Links of the week"); where both have a DOI,
    the DOIs tell (a journal's "Early View" item listed again in its issue, under a new
    guid and link, is the same paper). ``old_entries``: the entries under which
    ``new``'s feed listed ``old``."""
    source = new.source
    entries = set(old_entries)
    if source is None or not entries or source.entry in entries or rekey_apart(new) is None:
        return False
    return _other_item(new, old)


def _other_item(new: Paper, old: Paper) -> bool:
    """Whether ``new`` is another item than ``old`` if one feed listed both: their DOIs
    differ where both have one, else their links."""
    if new.doi and old.doi:
        return new.doi != old.doi
    return not _has_link(new, old.urls)


@dataclass(frozen=True, slots=True)
class BatchMerge:
    """A batch with its duplicates merged: one slot per distinct paper."""

    slots: list[Paper]
    title_keys: list[str]  # the normalised title of each slot's first paper
    slot_of: list[int]  # batch index -> slot
    merged: int  # papers merged into an earlier one of the batch


def merge_batch(batch: Sequence[Paper]) -> BatchMerge:
    """Merge the papers of one batch that are the same paper (same arXiv id, or same
    key unless both have different arXiv ids, or one feed lists them under different
    entries and links: ``listed_apart``). Pure."""
    merged = 0
    slots: list[Paper] = []
    title_keys: list[str] = []
    slot_of: list[int] = []
    by_arxiv: dict[str, int] = {}
    by_title: dict[str, int] = {}
    for paper in batch:
        key = paper.title_key
        hit = by_arxiv.get(paper.arxiv_id) if paper.arxiv_id else None
        if hit is None:
            candidate = by_title.get(key)
            if candidate is not None and _apart_in_batch(paper, slots[candidate]):
                paper, key = rekey_apart(paper) or (paper, key)
                candidate = by_title.get(key)
            if candidate is not None and not (paper.arxiv_id and slots[candidate].arxiv_id):
                hit = candidate
        if hit is None:
            hit = len(slots)
            slots.append(paper)
            title_keys.append(key)
        else:
            slots[hit] = merge_papers(slots[hit], paper)
            merged += 1
        merged_arxiv = slots[hit].arxiv_id
        if merged_arxiv:
            by_arxiv[merged_arxiv] = hit
        by_title.setdefault(key, hit)
        slot_of.append(hit)
    return BatchMerge(slots=slots, title_keys=title_keys, slot_of=slot_of, merged=merged)


def _apart_in_batch(paper: Paper, slot: Paper) -> bool:
    """``listed_apart`` for a paper matching an earlier paper of the same batch by title."""
    new, old = paper.source, slot.source
    if new is None or old is None or old.kind != "feed" or old.name != new.name:
        return False
    return listed_apart(paper, slot, [old.entry])


_JSON_SORTED = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _json_list(values: tuple[str, ...]) -> str:
    return json.dumps(list(values), ensure_ascii=False) if values else "[]"


ROW_COLUMNS = (
    "id",
    "title_key",
    "tid",
    "arxiv_id",
    "arxiv_version",
    "title",
    "abstract",
    "authors_count",
    "organization",
    "authors",
    "urls",
    "published",
    "upvotes",
    "extra",
    "first_seen",
    "last_seen",
    "updated_at",
)
_TITLE, _ABSTRACT = ROW_COLUMNS.index("title"), ROW_COLUMNS.index("abstract")


# the largest value of an ``sa.Integer`` column on every database (PostgreSQL's ``integer``)
MAX_INTEGER = 2**31 - 1


def _count_or_none(value: int | None) -> int | None:
    """A count or version the column can hold, else None: a garbled number (a drop's
    ``• 99999999999999999999 authors``) is no count, and must not stop the ingest."""
    return value if value is None or 0 <= value <= MAX_INTEGER else None


def _text(value: str) -> str:
    """Text a column holds on every database: without NUL characters, which PostgreSQL's
    text refuses (a JSON Feed's ``\u0000`` stopped every poll of that feed there)."""
    return value.replace("\x00", "") if "\x00" in value else value


def _text_or_none(value: str | None) -> str | None:
    return None if value is None else _text(value)


def row_values(
    paper: Paper, *, title_key: str, now: datetime, tid: str | None = None
) -> tuple[Any, ...]:
    """Column values (``ROW_COLUMNS`` order) for a paper; ``now`` is naive UTC; ``tid``
    the title id of ``title_key`` if the caller has it. Integers are bound within what the
    columns hold (upvotes at most ``MAX_INTEGER``; a count or version past it: none), text
    without NUL characters (JSON values are escaped)."""
    return (
        paper.id,
        title_key,
        tid or title_id_of_key(title_key),
        paper.arxiv_id,
        _count_or_none(paper.arxiv_version),
        _text(paper.title),
        _text(paper.abstract),
        _count_or_none(paper.authors_count),
        _text_or_none(paper.organization),
        _json_list(paper.authors),
        _json_list(paper.urls),
        paper.published,
        min(max(paper.upvotes, 0), MAX_INTEGER),
        _JSON_SORTED(dict(paper.extra)) if paper.extra else "{}",
        naive_utc(paper.first_seen) if paper.first_seen else now,
        now,
        now,
    )


_PAPER_COLUMNS = (
    papers.c.pk,
    papers.c.id,
    papers.c.arxiv_id,
    papers.c.arxiv_version,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors_count,
    papers.c.organization,
    papers.c.authors,
    papers.c.urls,
    papers.c.published,
    papers.c.upvotes,
    papers.c.extra,
    papers.c.first_seen,
    papers.c.last_seen,
)


def _paper_from_row(row: Any, sources: tuple[SourceRef, ...] = ()) -> Paper:
    return Paper(
        id=row.id,
        title=row.title,
        abstract=row.abstract,
        authors_count=row.authors_count,
        organization=row.organization,
        published=row.published,
        upvotes=row.upvotes,
        urls=tuple(json.loads(row.urls)),
        authors=tuple(json.loads(row.authors)),
        arxiv_id=row.arxiv_id,
        arxiv_version=row.arxiv_version,
        first_seen=utc(row.first_seen),
        last_seen=utc(row.last_seen),
        sources=sources,
        extra=json.loads(row.extra) if row.extra and row.extra != "{}" else {},
    )


def _migrate(conn: Connection, current: int) -> None:
    """Bring a database of schema version ``current`` up to ``SCHEMA_VERSION``, in the
    caller's transaction: the columns later versions added to existing tables, then each
    version's data step."""
    have: dict[str, set[str]] = {}
    for version in range(current + 1, SCHEMA_VERSION + 1):
        for table, column, sql_type in MIGRATIONS.get(version, ()):
            if table not in have:
                have[table] = {c["name"] for c in sa.inspect(conn).get_columns(table)}
            if column not in have[table]:  # a table made whole by create_all has it
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}")
                have[table].add(column)
        step = DATA_MIGRATIONS.get(version)
        if step is not None:
            step(conn)
    conn.execute(
        schema_info.update().where(schema_info.c.key == "version").values(value=str(SCHEMA_VERSION))
    )


def take_write_lock(conn: Connection) -> None:
    """Take the store's write lock now (a no-op write of one row): what this transaction
    reads next no other writer taking it can change before it commits. On SQLite that is
    the database's write lock (the driver begins a transaction only at the first write, so
    reads before it see no snapshot of their own); on PostgreSQL the row's lock, held to
    commit, and each later statement (read committed) sees what the writer before it
    committed."""
    conn.execute(
        schema_info.update().where(schema_info.c.key == "version").values(value=schema_info.c.value)
    )


SCHEMA_LOCK_KEY = 0x6469676573740001  # PostgreSQL advisory lock held while the schema is made


def _lock_writers_out_of_a_migration(conn: Connection) -> None:
    """PostgreSQL, a database of an older schema version: the store's write lock, before any
    DDL. Writers (an older digestbot still running) take it first, then touch ``papers``;
    the migration's DDL locks ``papers`` whole, and its last step updates the lock's row:
    taken in that order, a writer coming between the two deadlocked with the upgrade. A
    database at this version takes nothing (each open would wait for a writer)."""
    if not sa.inspect(conn).has_table("schema_info"):
        return
    if is_older_than(conn, SCHEMA_VERSION):
        take_write_lock(conn)


# made by ``metadata``'s ``after_create`` hooks (``digestbot.store.search``), not as tables
_SQLITE_DERIVED_TABLES = ("papers_fts",)


def _schema_is_current(conn: Connection) -> bool:
    """On SQLite: every table there and the schema at this version (nothing to create or
    migrate). Elsewhere False: ``create_all`` and its hooks run (they take no lock there)."""
    if conn.dialect.name != "sqlite":
        return False
    tables = set(sa.inspect(conn).get_table_names())
    wanted = [table.name for table in metadata.sorted_tables] + list(_SQLITE_DERIVED_TABLES)
    if any(name not in tables for name in wanted):
        return False
    return stored_version(conn) == str(SCHEMA_VERSION)


def forget_entries(conn: Connection, kind: str, name: str, entries: Sequence[Any]) -> None:
    """Delete the ``paper_sources`` rows of these entries of one source (they are seen again)."""
    for part in _chunks(list(entries)):
        conn.execute(
            paper_sources.delete().where(
                paper_sources.c.kind == kind,
                paper_sources.c.name == name,
                paper_sources.c.entry.in_(part),
            )
        )


def _stored_by_keys(conn: Connection, keys: Sequence[str]) -> dict[str, Any]:
    """Stored papers by ``title_key`` (one an indexed ``tid`` query per chunk), else by an
    earlier title of theirs (``store.aliases``: the key maps to the paper's row)."""
    found: dict[str, Any] = {}
    cols = (*_PAPER_COLUMNS, papers.c.title_key)
    tids = {title_id_of_key(k): k for k in keys}
    for part in _chunks(list(tids)):
        for row in conn.execute(sa.select(*cols).where(papers.c.tid.in_(part))):
            found.setdefault(row.title_key, row)
    missing = [tid for tid, key in tids.items() if key not in found and is_alias_key(key)]
    aliases = aliased_pks(conn, missing)
    if aliases:
        by_pk: dict[int, Any] = {}
        for part in _chunks(sorted(set(aliases.values()))):
            for row in conn.execute(sa.select(*cols).where(papers.c.pk.in_(part))):
                by_pk[row.pk] = row
        for tid, pk in aliases.items():
            if pk in by_pk:
                found.setdefault(tids[tid], by_pk[pk])
    return found


def _by_doi(conn: Connection, doi: str) -> Any:
    """The stored paper with this (lowercased) DOI: keyed by it (an indexed look-up), else
    the first whose ``extra["doi"]`` or a link names it (a scan of those columns: for one
    look-up typed by a user, not for ingest)."""
    keyed = title_id_of_key(doi_key(doi) or "")
    row = conn.execute(sa.select(*_PAPER_COLUMNS).where(papers.c.tid == keyed)).first()
    if row is not None:
        return row
    needle = doi.lower()
    query = (
        sa.select(*_PAPER_COLUMNS)
        .where(
            sa.or_(
                sa.func.lower(papers.c.extra).contains(needle, autoescape=True),
                sa.func.lower(papers.c.urls).contains(needle, autoescape=True),
            )
        )
        .order_by(papers.c.pk)
    )
    for found in conn.execute(query):
        paper = _paper_from_row(found)
        if find_doi(paper.doi) == needle or any(find_doi(url) == needle for url in paper.urls):
            return found
    return None


def _retitled_aliases(
    batch: Sequence[Paper],
    slot_of: Sequence[int],
    pk_of_slot: dict[int, int],
    final_keys: dict[int, str],
    old_keys: dict[int, str],
) -> list[tuple[str, int]]:
    """(title id, pk) of the titles an arXiv paper was known by besides the one it is
    stored by now: its stored title before a newer version retitled it, and the titles
    of the batch's items merged into it (``store.aliases``)."""
    pairs: list[tuple[str, int]] = []
    for pk, key in old_keys.items():
        if is_alias_key(key) and key != final_keys.get(pk, key):
            pairs.append((title_id_of_key(key), pk))
    for paper, slot in zip(batch, slot_of, strict=True):
        pk = pk_of_slot[slot]
        final = final_keys.get(pk)
        if not paper.arxiv_id or final is None or not is_alias_key(final):
            continue
        key = paper.title_key
        if is_alias_key(key) and key != final:
            pairs.append((title_id_of_key(key), pk))
    return pairs


def _listed_apart(
    conn: Connection,
    slots: Sequence[Paper],
    title_keys: Sequence[str],
    stored_by_arxiv: dict[str, Any],
    stored_by_title: dict[str, Any],
) -> dict[int, tuple[Paper, str]]:
    """The slots (feed items) that match a stored paper by title only, that paper being
    listed by the same feed under other entries (``listed_apart``), each re-keyed by its
    link (``rekey_apart``): one query for the entries of the few candidates."""
    candidates: dict[int, Any] = {}
    for index, (paper, key) in enumerate(zip(slots, title_keys, strict=True)):
        if ":" in key or (paper.arxiv_id and paper.arxiv_id in stored_by_arxiv):
            continue
        row = stored_by_title.get(key)
        if row is None or rekey_apart(paper) is None:
            continue
        if _other_item(paper, _paper_from_row(row)):
            candidates[index] = row
    if not candidates:
        return {}
    names = sorted({ref.name for i in candidates if (ref := slots[i].source) is not None})
    entries: dict[tuple[int, str], list[str]] = {}
    for part in _chunks(sorted({row.pk for row in candidates.values()})):
        query = sa.select(paper_sources.c.paper_pk, paper_sources.c.name, paper_sources.c.entry)
        query = query.where(
            paper_sources.c.paper_pk.in_(part),
            paper_sources.c.kind == "feed",
            paper_sources.c.name.in_(names),
        )
        for pk, name, entry in conn.execute(query):
            entries.setdefault((pk, name), []).append(entry)
    apart: dict[int, tuple[Paper, str]] = {}
    for index, row in candidates.items():
        paper = slots[index]
        name = paper.source.name if paper.source else ""
        rekeyed = rekey_apart(paper)
        old_entries = entries.get((row.pk, name), ())
        if rekeyed is not None and listed_apart(paper, _paper_from_row(row), old_entries):
            apart[index] = rekeyed
    return apart


def _alternate_keys(paper: Paper) -> list[str]:
    """Older keys a feed item keyed by its DOI or link may be stored under: its link key
    (keyed by its DOI now), its generic title (``GENERIC_TITLES``, keyed by title before
    they were keyed apart). A paper found so is it only if it has its link."""
    if not paper.own_link or paper.arxiv_id:
        return []
    key = paper.title_key
    keys: list[str] = []
    by_link = link_key(paper.own_link)
    if key.startswith("doi:") and by_link is not None:
        keys.append(by_link)
    plain = normalize_title(paper.title)
    if plain != key and is_generic_title(plain):
        keys.append(plain)
    return keys


def _updated_key(paper: Paper, stored_key: str) -> str:
    """The key an updated paper is stored by: its (new) normalised title, unless it is
    known by another key (a title with no letter or digit, a generic title, a paper
    listed apart: ``url:``, ``text:``) which it keeps."""
    if ":" in stored_key:
        return stored_key
    return normalize_title(paper.title) or stored_key


class SqlStore:
    """The paper store. Construct with an ``Engine``; ``SqlStore.open(url)`` for the usual case."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- life cycle -------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, *, create: bool = True) -> SqlStore:
        if url.startswith("sqlite:///") and url not in ("sqlite:///:memory:", "sqlite://"):
            Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(f"bad database_url: {exc}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if create:
            store.create_schema()
        return store

    def create_schema(self) -> None:
        try:
            with self.engine.connect() as conn:
                if _schema_is_current(conn):  # the usual case: read only, no lock waited for
                    return
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    # Hold the write lock from the start: processes opening a new database
                    # at once (the daemon and a cron ``fetch``) would otherwise all create
                    # its tables ("table … already exists"); the others wait, then find them.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif conn.dialect.name == "postgresql":
                    # the same on PostgreSQL (its DDL is transactional): one creates or
                    # migrates, the others wait for its commit, then find the tables
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK_KEY})")
                    _lock_writers_out_of_a_migration(conn)
                metadata.create_all(conn)
                current = stored_version(conn)
                if current is None:
                    conn.execute(
                        schema_info.insert().values(key="version", value=str(SCHEMA_VERSION))
                    )
                    for step in NEW_DATABASE_STEPS:
                        step(conn)
                elif int(current) > SCHEMA_VERSION:
                    raise StoreError(
                        f"the database has schema version {current}, newer than this "
                        f"digestbot knows ({SCHEMA_VERSION}): upgrade digestbot"
                    )
                elif int(current) < SCHEMA_VERSION:
                    _migrate(conn, int(current))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {_short(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; SQLAlchemy errors become ``StoreError``."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database error: {_short(exc)}") from exc

    # -- papers -----------------------------------------------------------------------------
    def upsert_papers(
        self, conn: Connection, batch: Sequence[Paper], *, now: datetime
    ) -> tuple[UpsertCounts, dict[int, int]]:
        """Insert new papers and merge known ones; returns counts and batch index -> paper pk.

        A paper matches a stored one by arXiv id, else by normalised title (a stored
        paper with another arXiv id is a different paper, whatever its title).
        """
        now = naive_utc(now)
        # another process (a second ``fetch``, the daemon) must not insert the same paper
        # between the look-up below and the insert: look up holding the write lock
        take_write_lock(conn)
        # 1. merge duplicates inside the batch
        batch_merge = merge_batch(batch)
        slots, title_keys, slot_of = batch_merge.slots, batch_merge.title_keys, batch_merge.slot_of
        merged_count = batch_merge.merged

        # 2. find the stored ones, two IN queries per chunk
        arxiv_ids = [p.arxiv_id for p in slots if p.arxiv_id]
        stored_by_arxiv: dict[str, Any] = {}
        cols = (*_PAPER_COLUMNS, papers.c.title_key)
        for part in _chunks(arxiv_ids):
            for row in conn.execute(sa.select(*cols).where(papers.c.arxiv_id.in_(part))):
                stored_by_arxiv[row.arxiv_id] = row
        # a paper keyed apart may be stored under an older key: its link (before its feed
        # gave DOIs), its generic title (stored before such titles were keyed apart)
        alternates = {i: keys for i, p in enumerate(slots) if (keys := _alternate_keys(p))}
        stored_by_title = _stored_by_keys(
            conn, [*title_keys, *(k for keys in alternates.values() for k in keys)]
        )
        # a feed's item matching by title a paper the same feed listed under another
        # entry and link is another paper: it is known by its link
        apart = _listed_apart(conn, slots, title_keys, stored_by_arxiv, stored_by_title)
        for index, (paper, key) in apart.items():
            slots[index], title_keys[index] = paper, key
        if apart:
            stored_by_title.update(_stored_by_keys(conn, [key for _, key in apart.values()]))

        # 3. decide insert or update
        inserts: list[tuple[Any, ...]] = []
        insert_slots: list[int] = []
        updates: dict[int, Paper] = {}  # stored pk -> merged paper
        stored: dict[int, Paper] = {}  # stored pk -> the paper as stored
        stored_keys: dict[int, str] = {}  # stored pk -> its title_key
        pk_of_slot: dict[int, int] = {}
        for index, (paper, key) in enumerate(zip(slots, title_keys, strict=True)):
            match: Any = stored_by_arxiv.get(paper.arxiv_id) if paper.arxiv_id else None
            if match is None:
                candidate = stored_by_title.get(key)
                for other in alternates.get(index, ()) if candidate is None else ():
                    found = stored_by_title.get(other)
                    if found is not None and _has_link(paper, json.loads(found.urls)):
                        candidate = found
                        break
                if candidate is not None and (
                    not candidate.arxiv_id
                    or not paper.arxiv_id
                    or candidate.arxiv_id == paper.arxiv_id
                ):
                    match = candidate
            if match is None:
                inserts.append(row_values(paper, title_key=key, now=now))
                insert_slots.append(index)
                continue
            merged_count += 1
            if match.pk not in stored:
                stored[match.pk] = _paper_from_row(match)
                stored_keys[match.pk] = match.title_key
            updates[match.pk] = merge_papers(updates.get(match.pk) or stored[match.pk], paper)
            pk_of_slot[index] = match.pk

        if inserts:
            bulk_insert(conn, papers, ROW_COLUMNS, inserts)
            pk_by_id: dict[str, int] = {}
            new_ids = [row[0] for row in inserts]
            for part in _chunks(new_ids):
                query = sa.select(papers.c.id, papers.c.pk).where(papers.c.id.in_(part))
                pk_by_id.update((row[0], row[1]) for row in conn.execute(query))
            for index, ident in zip(insert_slots, new_ids, strict=True):
                pk_of_slot[index] = pk_by_id[ident]
        changed = [(pk, p) for pk, p in updates.items() if p != stored[pk]]
        retexted = [
            (stored[pk], p)
            for pk, p in changed
            if (p.title, p.abstract) != (stored[pk].title, stored[pk].abstract)
        ]
        count_definitions(  # the papers' acronym definitions (``store.acronyms``)
            conn,
            [(row[_TITLE], row[_ABSTRACT]) for row in inserts]
            + [(new.title, new.abstract) for _, new in retexted],
            [(old.title, old.abstract) for old, _ in retexted],
        )
        # each paper's key as stored after this batch (for the aliases of arXiv papers)
        final_keys = {
            pk_of_slot[i]: key for i, key in zip(insert_slots, (r[1] for r in inserts), strict=True)
        }
        final_keys.update(stored_keys)
        final_keys.update((pk, _updated_key(p, stored_keys[pk])) for pk, p in changed)
        if changed:
            rows = [
                {
                    **dict(
                        zip(
                            ROW_COLUMNS,
                            row_values(p, title_key=final_keys[pk], now=now),
                            strict=True,
                        )
                    ),
                    "b_pk": pk,
                }
                for pk, p in changed
            ]
            stmt = (
                papers.update()
                .where(papers.c.pk == sa.bindparam("b_pk"))
                .values({c: sa.bindparam(c) for c in ROW_COLUMNS})
            )
            conn.execute(stmt, rows)
        unchanged = [{"b_pk": pk} for pk, p in updates.items() if p == stored[pk]]
        if unchanged:  # seen again, nothing new: only last_seen moves
            conn.execute(
                papers.update().where(papers.c.pk == sa.bindparam("b_pk")).values(last_seen=now),
                unchanged,
            )
        arxiv_keys = {pk: stored_keys[pk] for pk, p in updates.items() if p.arxiv_id}
        record_aliases(conn, _retitled_aliases(batch, slot_of, pk_of_slot, final_keys, arxiv_keys))
        pk_by_batch = {i: pk_of_slot[slot] for i, slot in enumerate(slot_of)}
        return UpsertCounts(new=len(inserts), merged=merged_count), pk_by_batch

    def record_sources(
        self,
        conn: Connection,
        refs: Sequence[tuple[int, SourceRef]],
        *,
        now: datetime,
    ) -> None:
        """Record where papers were seen; an entry seen again points at its latest paper
        (also within ``refs``: an entry listed twice is recorded once, for the last)."""
        if not refs:
            return
        refs = list({(ref.kind, ref.name, ref.entry): (pk, ref) for pk, ref in refs}.values())
        names = sorted({(ref.kind, ref.name) for _, ref in refs})
        for kind, name in names:
            entries = [_text(r.entry) for _, r in refs if r.kind == kind and r.name == name]
            forget_entries(conn, kind, name, entries)
        seen_at = naive_utc(now)
        bulk_insert(
            conn,
            paper_sources,
            ("paper_pk", "kind", "name", "entry", "line", "seen_at"),
            [(pk, ref.kind, ref.name, _text(ref.entry), ref.line, seen_at) for pk, ref in refs],
        )

    def count_papers(self) -> int:
        with self.transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(papers)).scalar_one())

    def load_papers(
        self,
        *,
        search: str | None = None,
        limit: int | None = None,
        ids: Iterable[str] | None = None,
        with_sources: bool = False,
    ) -> list[Paper]:
        """Stored papers, newest first (by published date, then first seen, then id)."""
        query = sa.select(*_PAPER_COLUMNS)
        if search:
            for word in search.split():
                query = query.where(
                    sa.or_(
                        papers.c.title.icontains(word, autoescape=True),
                        papers.c.abstract.icontains(word, autoescape=True),
                    )
                )
        if ids is not None:
            wanted = list(ids)
            if not wanted:
                return []
            query = query.where(papers.c.id.in_(wanted))
        query = query.order_by(
            papers.c.published.desc().nulls_last(), papers.c.first_seen.desc(), papers.c.id
        )
        if limit is not None:
            query = query.limit(limit)
        with self.transaction() as conn:
            rows = conn.execute(query).all()
            sources: dict[int, list[SourceRef]] = {}
            if with_sources and rows:
                pks = [row.pk for row in rows]
                for part in _chunks(pks):
                    for src in conn.execute(
                        sa.select(paper_sources)
                        .where(paper_sources.c.paper_pk.in_(part))
                        .order_by(paper_sources.c.pk)
                    ):
                        sources.setdefault(src.paper_pk, []).append(
                            SourceRef(kind=src.kind, name=src.name, entry=src.entry, line=src.line)
                        )
        return [_paper_from_row(row, tuple(sources.get(row.pk, ()))) for row in rows]

    def get_paper(self, ident: str) -> Paper:
        """A paper by id, arXiv id (any version), its title id (``t-…``, also after it
        gained an arXiv id, or under an earlier title), exact (normalised) title or an
        earlier one (``store.aliases``), or DOI (``10.1145/…``, ``doi:10.…``, a
        ``https://doi.org/…`` or publisher's ``…/doi/10.…`` link); a title with no letter
        or digit (``???``: such papers are keyed by their link or text) as written."""
        parsed = parse_arxiv_id(ident)
        candidates = [ident] + ([parsed[0]] if parsed else [])
        by_title = (
            papers.c.tid == title_id(ident)
            if normalize_title(ident)
            else papers.c.title == ident.strip()
        )
        with self.transaction() as conn:
            row: Any = conn.execute(
                sa.select(*_PAPER_COLUMNS).where(
                    sa.or_(papers.c.id.in_(candidates), papers.c.tid == ident, by_title)
                )
            ).first()
            if row is None:  # an earlier title of a retitled paper, or its ``t-…`` id then
                tids = [ident.strip()] + ([title_id(ident)] if normalize_title(ident) else [])
                aliased = aliased_pks(conn, tids)
                if aliased:
                    pk = aliased.get(tids[0], next(iter(aliased.values())))
                    query = sa.select(*_PAPER_COLUMNS).where(papers.c.pk == pk)
                    row = conn.execute(query).first()
            doi = find_doi(ident) if row is None else None
            if doi is not None:
                row = _by_doi(conn, doi)
        if row is None:
            raise NotFoundError("paper", ident)
        return _paper_from_row(row)

    # -- files ------------------------------------------------------------------------------
    def file_ingested(self, sha256: str) -> FileRecord | None:
        """The successful ingest of a file with this content, if any."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(ingested_files)
                .where(ingested_files.c.sha256 == sha256, ingested_files.c.status != "failed")
                .limit(1)
            ).first()
        return _file_from_row(row) if row is not None else None

    def ingested_sizes(self) -> set[int]:
        """The sizes of the contents ingested successfully (a file of another size is new)."""
        with self.transaction() as conn:
            query = (
                sa.select(ingested_files.c.size)
                .where(ingested_files.c.status != "failed")
                .distinct()
            )
            return {row[0] for row in conn.execute(query)}

    def ingested_hashes(self, hashes: Sequence[str]) -> set[str]:
        """Which of these contents were ingested successfully before (one query a chunk)."""
        found: set[str] = set()
        with self.transaction() as conn:
            for part in _chunks(list(dict.fromkeys(hashes))):
                query = sa.select(ingested_files.c.sha256).where(
                    ingested_files.c.sha256.in_(part), ingested_files.c.status != "failed"
                )
                found.update(row[0] for row in conn.execute(query))
        return found

    def failed_files(self, paths: Sequence[str] | None = None) -> dict[str, FileRecord]:
        """The recorded failures of these paths, or of every path (one a path: a newer
        outcome replaces it)."""
        found: dict[str, FileRecord] = {}
        with self.transaction() as conn:
            if paths is None:
                query = sa.select(ingested_files).where(ingested_files.c.status == "failed")
                return {row.path: _file_from_row(row) for row in conn.execute(query)}
            for part in _chunks(list(dict.fromkeys(paths))):
                query = sa.select(ingested_files).where(
                    ingested_files.c.path.in_(part), ingested_files.c.status == "failed"
                )
                found.update((row.path, _file_from_row(row)) for row in conn.execute(query))
        return found

    def content_ingested(self, conn: Connection, sha256: str) -> bool:
        """Whether this content was ingested successfully (in ``conn``'s transaction)."""
        query = sa.select(ingested_files.c.pk).where(
            ingested_files.c.sha256 == sha256, ingested_files.c.status != "failed"
        )
        return conn.execute(query.limit(1)).first() is not None

    def record_file(self, conn: Connection, record: FileRecord) -> None:
        # a failed attempt at the same path is replaced by the newer outcome
        conn.execute(
            ingested_files.delete().where(
                ingested_files.c.path == record.path, ingested_files.c.status == "failed"
            )
        )
        conn.execute(
            ingested_files.insert().values(
                path=record.path,
                size=record.size,
                sha256=record.sha256,
                ingested_at=naive_utc(record.ingested_at),
                status=record.status,
                error=record.error,
                entries=record.entries,
                papers_new=record.papers_new,
                papers_merged=record.papers_merged,
                warnings=json.dumps(list(record.warnings), ensure_ascii=False),
            )
        )

    def recent_files(self, *, limit: int = 20) -> list[FileRecord]:
        with self.transaction() as conn:
            rows = conn.execute(
                sa.select(ingested_files)
                .order_by(ingested_files.c.ingested_at.desc(), ingested_files.c.pk.desc())
                .limit(limit)
            ).all()
        return [_file_from_row(row) for row in rows]


def _file_from_row(row: Any) -> FileRecord:
    return FileRecord(
        path=row.path,
        size=row.size,
        sha256=row.sha256,
        ingested_at=utc(row.ingested_at) or datetime.now(UTC),
        status=row.status,
        error=row.error,
        entries=row.entries,
        papers_new=row.papers_new,
        papers_merged=row.papers_merged,
        warnings=tuple(json.loads(row.warnings)),
    )


_WAL_ATTEMPTS = 200  # 10 s, as the busy timeout


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")
    # Switching a new database to WAL answers "locked" at once, without waiting, while
    # another process opens it too (the daemon and a cron job on a fresh install).
    for attempt in range(_WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA wal_autocheckpoint=4000")  # 16 MB: fewer checkpoints in bulk ingest
    cursor.close()


def _short(exc: BaseException) -> str:
    """The first line of a driver error, without the SQL and its parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc)
    return text.splitlines()[0] if text else type(exc).__name__
