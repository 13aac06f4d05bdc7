"""Paper embeddings: one vector per (paper, model), computed once and reused.

A vector is stale when its paper changed after it was computed (``paper_updated_at``
differs); ``missing_embeddings`` lists those and the papers never embedded. Most changes
are upvotes or sources, not the text: each vector keeps the SHA-256 of the text it was
computed from, so such a vector is only marked current again (``touch_embeddings``), not
recomputed.

A paper can have a second vector per model, computed from its title alone (ranking mixes
both for the profile's texts): it is stored under the key ``title_key(model)`` with its
own text digest, so a paper whose title did not change keeps it.

Each write of vectors is numbered (``next_change``; the vectors carry the number in ``seq``),
so a process that keeps them (``ranking.vector_cache``) reads only those written since its
mark (``load_vector_changes``). Anything that writes ``paper_embeddings.vector`` must go
through ``record_embeddings`` (or call ``next_change`` and stamp ``seq`` itself).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from digestbot.store.daemon import database_now
from digestbot.store.schema import VECTOR_CHANGES, metadata, papers, start_change_counter
from digestbot.store.sql import SqlStore, _chunks, naive_utc, utc

paper_embeddings = sa.Table(
    "paper_embeddings",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False),
    sa.Column("model", sa.String(255), nullable=False),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian
    sa.Column("paper_updated_at", sa.DateTime, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("text_sha256", sa.String(64)),  # of the text embedded (schema version 2)
    # the ``embedding_changes`` count of the write that stored it (version 4; NULL before)
    sa.Column("seq", sa.BigInteger),
    sa.UniqueConstraint("paper_pk", "model", name="uq_paper_embeddings"),
    sa.Index("ix_paper_embeddings_model_seq", "model", "seq"),
)

# One row (``VECTOR_CHANGES``): how many transactions wrote paper vectors. A write bumps it
# first, which also makes concurrent writers wait for each other until they commit, so a
# reader that sees ``seq = n`` knows every vector stamped ``<= n`` is committed.
embedding_changes = sa.Table(
    "embedding_changes",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("instance", sa.String(32), nullable=False),  # this database, not another
)


TITLE_SUFFIX = "#title"  # the title vectors' model key: the model's name and this


def title_key(model: str) -> str:
    """The ``paper_embeddings.model`` key of ``model``'s title vectors."""
    return f"{model}{TITLE_SUFFIX}"


@dataclass(frozen=True, slots=True)
class ToEmbed:
    pk: int
    title: str
    abstract: str
    updated_at: datetime
    text_sha256: str | None = None  # of the text behind the paper's stale vector, if any


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _stale(vector: sa.FromClause) -> sa.ColumnElement[bool]:
    """A paper's vector (outer-joined as ``vector``) is missing, or older than the paper."""
    return sa.or_(vector.c.pk.is_(None), vector.c.paper_updated_at != papers.c.updated_at)


def _missing_query(model: str, since: datetime | None) -> sa.Select[tuple[Any, ...]]:
    joined = papers.outerjoin(
        paper_embeddings,
        sa.and_(paper_embeddings.c.paper_pk == papers.c.pk, paper_embeddings.c.model == model),
    )
    query = (
        sa.select(
            papers.c.pk,
            papers.c.title,
            papers.c.abstract,
            papers.c.updated_at,
            paper_embeddings.c.text_sha256,
        )
        .select_from(joined)
        .where(_stale(paper_embeddings))
    )
    if since is not None:
        query = query.where(papers.c.first_seen >= naive_utc(since))
    return query


def missing_embeddings(
    store: SqlStore, *, model: str, limit: int | None = None, since: datetime | None = None
) -> list[ToEmbed]:
    """Papers with no vector for ``model``, or a vector older than the paper; newest first
    (by first seen), only those first seen at or after ``since`` when given."""
    query = _missing_query(model, since).order_by(papers.c.first_seen.desc(), papers.c.pk.desc())
    if limit is not None:
        query = query.limit(limit)
    with store.transaction() as conn:
        return [
            ToEmbed(r.pk, r.title, r.abstract, r.updated_at, r.text_sha256)
            for r in conn.execute(query)
        ]


def count_missing_embeddings(store: SqlStore, *, model: str, since: datetime | None = None) -> int:
    return count_missing_sets(store, models=[model], since=since)[model]


def count_missing_sets(
    store: SqlStore, *, models: Sequence[str], since: datetime | None = None
) -> dict[str, int]:
    """``count_missing_embeddings`` of each of ``models``, in one pass over the papers."""
    joined: sa.FromClause = papers
    counts = []
    for model in models:
        vector = paper_embeddings.alias()
        joined = joined.outerjoin(
            vector, sa.and_(vector.c.paper_pk == papers.c.pk, vector.c.model == model)
        )
        counts.append(sa.func.coalesce(sa.func.sum(sa.case((_stale(vector), 1), else_=0)), 0))
    query = sa.select(*counts).select_from(joined)
    if since is not None:
        query = query.where(papers.c.first_seen >= naive_utc(since))
    with store.transaction() as conn:
        row = conn.execute(query).one()
    return {model: int(n) for model, n in zip(models, row, strict=True)}


def count_embeddings(store: SqlStore, *, model: str) -> int:
    """How many papers have a vector for ``model`` (current or stale)."""
    query = (
        sa.select(sa.func.count())
        .select_from(paper_embeddings)
        .where(paper_embeddings.c.model == model)
    )
    with store.transaction() as conn:
        return int(conn.execute(query).scalar_one())


def record_embeddings(
    store: SqlStore,
    items: Sequence[ToEmbed],
    vectors: npt.NDArray[np.float32],
    *,
    model: str,
    now: datetime,
    texts: Sequence[str] | None = None,
) -> None:
    """Store (replace) the vectors of ``items`` (computed from ``texts``) in one transaction."""
    if not items:
        return
    with store.transaction() as conn:
        seq = next_change(conn)
        for part in _chunks([i.pk for i in items]):
            conn.execute(
                paper_embeddings.delete().where(
                    paper_embeddings.c.model == model, paper_embeddings.c.paper_pk.in_(part)
                )
            )
        conn.execute(
            paper_embeddings.insert(),
            [
                {
                    "paper_pk": item.pk,
                    "model": model,
                    "dim": int(vectors.shape[1]),
                    "vector": np.asarray(vec, dtype="<f4").tobytes(),
                    "paper_updated_at": item.updated_at,
                    "created_at": naive_utc(now),
                    "text_sha256": None if texts is None else text_digest(texts[i]),
                    "seq": seq,
                }
                for i, (item, vec) in enumerate(zip(items, vectors, strict=True))
            ],
        )


def touch_embeddings(store: SqlStore, items: Sequence[ToEmbed], *, model: str) -> None:
    """Mark the vectors of ``items`` current again: their papers changed, not their text.
    Counted as a write of vectors (``next_change``): fewer vectors are missing now, which a
    process remembering the count (``missing_state``) must see; no vector is re-read."""
    if not items:
        return
    statement = (
        paper_embeddings.update()
        .where(
            paper_embeddings.c.model == model,
            paper_embeddings.c.paper_pk == sa.bindparam("b_pk"),
        )
        .values(paper_updated_at=sa.bindparam("b_updated"))
    )
    with store.transaction() as conn:
        next_change(conn)
        conn.execute(
            statement,
            [{"b_pk": item.pk, "b_updated": item.updated_at} for item in items],
        )


def missing_state(store: SqlStore) -> tuple[str, int, int, int]:
    """What the count of missing vectors depends on, cheaply (no pass over the papers'
    rows): this database and its count of vector writes (``next_change``: new, replaced and
    touched vectors), and the papers' number and highest pk (new papers). A paper changed
    in place is not seen here: the lexical index re-lists it (see
    ``ranking.vector_cache.VectorCache.missing``)."""
    current = embedding_changes.c.name == VECTOR_CHANGES
    query = sa.select(
        sa.select(embedding_changes.c.instance).where(current).scalar_subquery(),
        sa.select(embedding_changes.c.seq).where(current).scalar_subquery(),
        sa.select(sa.func.count()).select_from(papers).scalar_subquery(),
        sa.select(sa.func.max(papers.c.pk)).scalar_subquery(),
    )
    with store.transaction() as conn:
        instance, seq, n_papers, max_pk = conn.execute(query).one()
    return str(instance or ""), int(seq or 0), int(n_papers or 0), int(max_pk or 0)


Stored = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]  # (paper pks, their vectors)


def load_embeddings(store: SqlStore, *, model: str) -> Stored:
    """(paper pks, vectors) of every stored vector for ``model`` (``load_vector_changes``
    read whole)."""
    return load_vector_changes(store, models=[model], since=None).sets[model]


def next_change(conn: sa.Connection) -> int:
    """Count one more write of paper vectors (in the writer's transaction); its number."""
    bump = (
        embedding_changes.update()
        .where(embedding_changes.c.name == VECTOR_CHANGES)
        .values(seq=embedding_changes.c.seq + 1)
    )
    if conn.execute(bump).rowcount == 0:  # a database whose counter row was removed
        start_change_counter(conn)
        conn.execute(bump)
    query = sa.select(embedding_changes.c.seq).where(embedding_changes.c.name == VECTOR_CHANGES)
    return int(conn.execute(query).scalar_one())


@dataclass(frozen=True, slots=True)
class ChangeMark:
    """Where a reader of the vectors is: this database (``instance``) up to write ``seq``."""

    instance: str
    seq: int


@dataclass(frozen=True, slots=True)
class VectorChanges:
    """What ``load_vector_changes`` read: per model, the vectors written after the mark
    asked (all of them for a model read whole) up to ``mark``, and how many vectors the
    model has up to ``mark`` (a reader holding another number missed a deletion)."""

    mark: ChangeMark
    sets: dict[str, Stored]
    counts: dict[str, int]
    whole: bool  # every vector read (not only those written after the mark asked)


def load_vector_changes(
    store: SqlStore, *, models: Sequence[str], since: ChangeMark | None
) -> VectorChanges:
    """The vectors of ``models`` written after ``since`` (None, another database's mark or
    one ahead of this database: every vector), up to the mark returned, and how many each
    model has up to it.

    The mark and the counts come from one statement (one snapshot: a vector replaced
    meanwhile is not counted missing); the vectors from a second. A vector replaced between
    the two (its old row deleted, the new one stamped after the mark) is then counted and
    not read: a reader holding it keeps it until it reads the new one next time, a reader
    that did not hold it finds a count that does not match and reads everything again.
    """
    with store.transaction() as conn:
        mark, counts = _mark_and_counts(conn, models, counted=since is not None)
        if since is not None and (since.instance != mark.instance or since.seq > mark.seq):
            since = None  # another database, or an older copy of this one: read it whole
        table = paper_embeddings
        read = sa.select(table.c.model, table.c.paper_pk, table.c.vector).where(
            table.c.model.in_(list(models)),
            sa.or_(table.c.seq.is_(None), table.c.seq <= mark.seq),
        )
        if since is not None:
            read = read.where(table.c.seq > since.seq)
        grouped: dict[str, list[Any]] = {model: [] for model in models}
        for row in conn.execute(read).all():
            grouped[row[0]].append(row)
    if since is None:  # read whole: what was read is what there is
        counts = {model: len(rows) for model, rows in grouped.items()}
    sets = {model: _arrays(grouped.pop(model)) for model in models}  # rows freed as read
    return VectorChanges(mark, sets, counts, since is None)


def _mark_and_counts(
    conn: sa.Connection, models: Sequence[str], *, counted: bool
) -> tuple[ChangeMark, dict[str, int]]:
    """The write counter and (when ``counted``) the vectors of each model stamped up to it
    (or never)."""
    table = paper_embeddings
    current = embedding_changes.c.name == VECTOR_CHANGES
    seq_now = sa.select(embedding_changes.c.seq).where(current).scalar_subquery()
    upto = sa.and_(
        table.c.model.in_(list(models)), sa.or_(table.c.seq.is_(None), table.c.seq <= seq_now)
    )
    mark_part = sa.select(
        sa.literal(""), embedding_changes.c.seq, embedding_changes.c.instance
    ).where(current)
    count_part = (
        sa.select(table.c.model, sa.func.count(), sa.cast(sa.null(), sa.String(32)))
        .where(upto)
        .group_by(table.c.model)
    )
    mark = ChangeMark("", 0)
    counts = {model: 0 for model in models}
    query = sa.union_all(mark_part, count_part) if counted else mark_part
    for model, n, instance in conn.execute(query).all():
        if model:
            counts[model] = int(n)
        else:
            mark = ChangeMark(str(instance), int(n))
    return mark, counts


def _arrays(rows: Sequence[Any]) -> Stored:
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    pks = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    blob = b"".join(r[2] for r in rows)
    vectors = np.frombuffer(blob, dtype="<f4").reshape(len(rows), -1)
    return pks, vectors


# Profile texts embedded once per model and kept, so a ``rank`` on a store whose papers all
# have vectors needs no model at all (importing torch and loading it costs seconds).
query_embeddings = sa.Table(
    "query_embeddings",
    metadata,
    sa.Column("model", sa.String(255), primary_key=True),
    sa.Column("text_sha256", sa.String(64), primary_key=True),  # of the text (and its settings)
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian
)


def load_query_vector(store: SqlStore, *, model: str, key: str) -> npt.NDArray[np.float32] | None:
    """The stored vector of a query text (``key``: ``text_digest`` of it), or None."""
    query = sa.select(query_embeddings.c.vector).where(
        query_embeddings.c.model == model, query_embeddings.c.text_sha256 == key
    )
    with store.transaction() as conn:
        blob = conn.execute(query).scalar()
    return None if blob is None else np.frombuffer(blob, dtype="<f4").astype(np.float32)


def record_query_vector(
    store: SqlStore, *, model: str, key: str, vector: npt.NDArray[np.float32]
) -> None:
    """Keep a query text's vector (another process may have kept it first: then theirs stays)."""
    with store.transaction() as conn:
        exists = conn.execute(
            sa.select(sa.literal(1)).where(
                query_embeddings.c.model == model, query_embeddings.c.text_sha256 == key
            )
        ).first()
        if exists is None:
            conn.execute(
                query_embeddings.insert().values(
                    model=model, text_sha256=key, vector=np.asarray(vector, "<f4").tobytes()
                )
            )


embedding_worker = sa.Table(
    "embedding_worker",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),  # one row: "worker"
    sa.Column("holder", sa.String(255), nullable=False),  # the daemon's host:pid:id
    sa.Column("model", sa.String(255), nullable=False),
    # loading | embedding | idle | failed | stopped
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("backlog", sa.String(16), nullable=False),  # all | recent | none
    sa.Column("embedded", sa.Integer, nullable=False, server_default="0"),  # since started_at
    sa.Column("papers_per_second", sa.Float),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("error", sa.Text),
)

WORKER_ROW = "worker"


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What the daemon's background embedding worker is doing (``digestbot status``).

    ``updated_at`` is its heartbeat, on the database's clock as the scheduler lock's (None
    when recording: stamped with the database's clock then); ``read_at`` the database's
    clock when the row was read, so its ``age`` compares one clock."""

    holder: str
    model: str
    state: str
    backlog: str
    embedded: int
    papers_per_second: float | None
    started_at: datetime
    updated_at: datetime | None
    error: str | None = None
    read_at: datetime | None = None

    @property
    def age(self) -> timedelta | None:
        """Time since the last heartbeat, on the database's clock (None: not read from it)."""
        if self.read_at is None or self.updated_at is None:
            return None
        return self.read_at - self.updated_at


def record_worker_state(store: SqlStore, state: WorkerState) -> None:
    """Replace the worker's row (one small transaction); its heartbeat at the database's
    clock unless ``state.updated_at`` is given."""
    values = {
        "name": WORKER_ROW,
        "holder": state.holder,
        "model": state.model,
        "state": state.state,
        "backlog": state.backlog,
        "embedded": state.embedded,
        "papers_per_second": state.papers_per_second,
        "started_at": naive_utc(state.started_at),
        "error": state.error,
    }
    with store.transaction() as conn:
        beat = state.updated_at
        values["updated_at"] = database_now(conn) if beat is None else naive_utc(beat)
        conn.execute(embedding_worker.delete().where(embedding_worker.c.name == WORKER_ROW))
        conn.execute(embedding_worker.insert().values(**values))


def load_worker_state(store: SqlStore) -> WorkerState | None:
    query = sa.select(embedding_worker).where(embedding_worker.c.name == WORKER_ROW)
    with store.transaction() as conn:
        row = conn.execute(query).mappings().first()
        read_at = database_now(conn) if row is not None else None
    if row is None:
        return None
    return WorkerState(
        holder=row["holder"],
        model=row["model"],
        state=row["state"],
        backlog=row["backlog"],
        embedded=int(row["embedded"]),
        papers_per_second=row["papers_per_second"],
        started_at=utc(row["started_at"]) or row["started_at"],
        updated_at=utc(row["updated_at"]) or row["updated_at"],
        error=row["error"],
        read_at=utc(read_at),
    )
