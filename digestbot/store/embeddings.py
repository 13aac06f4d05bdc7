"""Paper embeddings: one vector per (paper, model), computed once and reused.

A vector is stale when its paper changed after it was computed (``paper_updated_at``
differs); ``missing_embeddings`` lists those and the papers never embedded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa

from digestbot.store.schema import metadata, papers
from digestbot.store.sql import SqlStore, _chunks, naive_utc

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
    sa.UniqueConstraint("paper_pk", "model", name="uq_paper_embeddings"),
)


@dataclass(frozen=True, slots=True)
class ToEmbed:
    pk: int
    title: str
    abstract: str
    updated_at: datetime


def missing_embeddings(store: SqlStore, *, model: str, limit: int | None = None) -> list[ToEmbed]:
    """Papers with no vector for ``model``, or a vector older than the paper."""
    joined = papers.outerjoin(
        paper_embeddings,
        sa.and_(paper_embeddings.c.paper_pk == papers.c.pk, paper_embeddings.c.model == model),
    )
    query = (
        sa.select(papers.c.pk, papers.c.title, papers.c.abstract, papers.c.updated_at)
        .select_from(joined)
        .where(
            sa.or_(
                paper_embeddings.c.pk.is_(None),
                paper_embeddings.c.paper_updated_at != papers.c.updated_at,
            )
        )
        .order_by(papers.c.pk)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.transaction() as conn:
        return [ToEmbed(r.pk, r.title, r.abstract, r.updated_at) for r in conn.execute(query)]


def count_missing_embeddings(store: SqlStore, *, model: str) -> int:
    joined = papers.outerjoin(
        paper_embeddings,
        sa.and_(paper_embeddings.c.paper_pk == papers.c.pk, paper_embeddings.c.model == model),
    )
    query = (
        sa.select(sa.func.count())
        .select_from(joined)
        .where(
            sa.or_(
                paper_embeddings.c.pk.is_(None),
                paper_embeddings.c.paper_updated_at != papers.c.updated_at,
            )
        )
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
) -> None:
    """Store (replace) the vectors of ``items`` in one transaction."""
    if not items:
        return
    with store.transaction() as conn:
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
                }
                for item, vec in zip(items, vectors, strict=True)
            ],
        )


def load_embeddings(
    store: SqlStore, *, model: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(paper pks, vectors) of every stored vector for ``model``."""
    query = sa.select(paper_embeddings.c.paper_pk, paper_embeddings.c.vector).where(
        paper_embeddings.c.model == model
    )
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32)
    pks = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    blob = b"".join(r[1] for r in rows)
    vectors = np.frombuffer(blob, dtype="<f4").reshape(len(rows), -1)
    return pks, vectors
