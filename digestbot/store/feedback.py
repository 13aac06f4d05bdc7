"""Feedback: 👍/👎 on a paper, for a profile or for one person (a Slack user).

One vote per (subject, paper): a new vote replaces the old one. The ranker
reads these to pull rankings toward liked papers and away from disliked ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from digestbot.store.schema import metadata, papers
from digestbot.store.sql import SqlStore, naive_utc, utc

SubjectKind = Literal["profile", "user"]

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_kind", sa.String(16), nullable=False),  # profile | user
    sa.Column("subject", sa.String(255), nullable=False),  # profile name | Slack user id
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False),
    sa.Column("value", sa.SmallInteger, nullable=False),  # +1 | -1
    sa.Column("source", sa.String(32), nullable=False),  # cli | slack | email
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("subject_kind", "subject", "paper_pk", name="uq_feedback_vote"),
)


@dataclass(frozen=True, slots=True)
class Vote:
    paper_id: str
    value: int
    source: str
    created_at: datetime


def record_feedback(
    store: SqlStore,
    *,
    subject_kind: SubjectKind,
    subject: str,
    paper_id: str,
    value: int,
    source: str,
    now: datetime,
) -> Vote:
    """Store a vote, replacing an earlier one on the same paper (``paper_id`` as ``get_paper``)."""
    if value not in (1, -1):
        raise ValueError("a vote is +1 or -1")
    paper = store.get_paper(paper_id)
    with store.transaction() as conn:
        pk = conn.execute(sa.select(papers.c.pk).where(papers.c.id == paper.id)).scalar_one()
        conn.execute(
            feedback.delete().where(
                feedback.c.subject_kind == subject_kind,
                feedback.c.subject == subject,
                feedback.c.paper_pk == pk,
            )
        )
        conn.execute(
            feedback.insert().values(
                subject_kind=subject_kind,
                subject=subject,
                paper_pk=pk,
                value=value,
                source=source,
                created_at=naive_utc(now),
            )
        )
    return Vote(paper_id=paper.id, value=value, source=source, created_at=now)


def load_feedback(store: SqlStore, *, subject_kind: SubjectKind, subject: str) -> list[Vote]:
    """Every vote of a subject, oldest first."""
    query = (
        sa.select(papers.c.id, feedback.c.value, feedback.c.source, feedback.c.created_at)
        .join(papers, papers.c.pk == feedback.c.paper_pk)
        .where(feedback.c.subject_kind == subject_kind, feedback.c.subject == subject)
        .order_by(feedback.c.created_at, feedback.c.pk)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    return [
        Vote(
            paper_id=r.id,
            value=r.value,
            source=r.source,
            created_at=utc(r.created_at) or r.created_at,
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class PaperVote:
    """One vote on a paper, with whose it is (``digestbot show``)."""

    subject_kind: str
    subject: str
    value: int
    source: str
    created_at: datetime


def load_paper_votes(store: SqlStore, paper_id: str) -> list[PaperVote]:
    """Every vote on one paper (by its stored id), oldest first."""
    query = (
        sa.select(
            feedback.c.subject_kind,
            feedback.c.subject,
            feedback.c.value,
            feedback.c.source,
            feedback.c.created_at,
        )
        .join(papers, papers.c.pk == feedback.c.paper_pk)
        .where(papers.c.id == paper_id)
        .order_by(feedback.c.created_at, feedback.c.pk)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    return [
        PaperVote(
            subject_kind=r.subject_kind,
            subject=r.subject,
            value=r.value,
            source=r.source,
            created_at=utc(r.created_at) or r.created_at,
        )
        for r in rows
    ]
