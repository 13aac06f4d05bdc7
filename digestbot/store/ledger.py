"""The delivery ledger: what was (to be) sent where, so that nothing is sent twice or lost.

``deliveries``: one row per (profile, destination, digest date), written with its
papers (``delivery_papers``) BEFORE anything is sent. The unique key means a
re-run, a misfire or two racing processes get one row, never two posts. Its
status goes ``pending`` -> ``sent`` (with the Slack ts or the Message-ID) or
``failed`` (error, attempts); ``empty`` marks a day with nothing to send and
``superseded`` an older unsent digest whose papers rolled into a later one;
``rejected`` a digest Slack refused for its content even as plain text (or a mail server
for its size or content, in full and as plain text): it is not
retried, its papers are not counted as sent, and they may roll into the next digest,
except those already in ``REJECTED_LIMIT`` rejected digests to that destination
(``load_rejected_papers``), so that no paper keeps a destination from its digests.
A row is claimed (``claimed_by``/``lease_until``) before sending: a second process
cannot claim it while the lease holds.

``sent_papers``: one row per (destination, paper), written only after that
destination accepted the message carrying the paper (per Slack message part). An email
cut to fit the mail server's size limit is ``sent`` with only the papers it listed there;
the others (``load_left_out``) are owed to that destination until sent: offered to its
next digest, and to each later one while the cut digest is at most ``LEFT_OUT_DAYS`` old.

A destination is a key such as ``slack:C0123``, ``email:alice@example.org`` (one
per recipient, so one bouncing address blocks no one else) or ``file:/path:markdown``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.errors import StoreError
from digestbot.store.schema import metadata, papers
from digestbot.store.sql import SqlStore, _chunks, naive_utc, utc

Status = Literal["pending", "sent", "failed", "empty", "superseded", "rejected"]
OPEN: tuple[Status, ...] = ("pending", "failed")
DONE: tuple[Status, ...] = ("sent", "empty")
REJECTED: Status = "rejected"  # settled, not sent (neither OPEN nor DONE)
REJECTED_LIMIT = 2  # rejected digests a paper may be in before it is no longer offered

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("digest_id", sa.String(40), nullable=False, unique=True),
    sa.Column("profile", sa.String(255), nullable=False),
    sa.Column("destination", sa.String(512), nullable=False),
    sa.Column("digest_date", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("watermark", sa.Integer, nullable=False),  # max papers.pk when built
    sa.Column("paper_count", sa.Integer, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("error", sa.Text),
    sa.Column("external_id", sa.Text),  # Slack ts | Message-ID | file path
    sa.Column("progress", sa.Text, nullable=False, server_default="{}"),  # JSON
    sa.Column("claimed_by", sa.String(40)),
    sa.Column("lease_until", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    sa.UniqueConstraint("profile", "destination", "digest_date", name="uq_deliveries_slot"),
    sa.Index("ix_deliveries_dest_status", "destination", "status"),
)

delivery_papers = sa.Table(
    "delivery_papers",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("delivery_pk", sa.Integer, sa.ForeignKey("deliveries.pk"), nullable=False),
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.UniqueConstraint("delivery_pk", "paper_pk", name="uq_delivery_papers"),
)

sent_papers = sa.Table(
    "sent_papers",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("destination", sa.String(512), nullable=False),
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False),
    sa.Column("delivery_pk", sa.Integer, sa.ForeignKey("deliveries.pk"), nullable=False),
    sa.Column("sent_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("destination", "paper_pk", name="uq_sent_papers"),
)


@dataclass(frozen=True, slots=True)
class LedgerPaper:
    paper_id: str  # its id when the row was read (a ``t-…`` id may become an arXiv id)
    score: float
    why: str
    paper_pk: int  # its row key: the paper itself, whatever its id becomes


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    pk: int
    digest_id: str
    profile: str
    destination: str
    digest_date: date
    status: str
    watermark: int
    attempts: int
    error: str | None
    external_id: str | None
    progress: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    papers: tuple[LedgerPaper, ...] = ()
    paper_count: int = 0
    lease_until: datetime | None = None

    def is_leased(self, now: datetime) -> bool:
        """Another run claimed this row and its lease has not run out."""
        return self.status == "pending" and self.lease_until is not None and self.lease_until > now


@dataclass(frozen=True, slots=True)
class NewDelivery:
    digest_id: str
    profile: str
    destination: str
    digest_date: date
    status: Literal["pending", "empty"]
    watermark: int
    papers: tuple[tuple[int, float, str], ...] = field(default_factory=tuple)  # pk, score, why


def _record(row: Any, papers_: tuple[LedgerPaper, ...] = ()) -> DeliveryRecord:
    return DeliveryRecord(
        pk=row.pk,
        digest_id=row.digest_id,
        profile=row.profile,
        destination=row.destination,
        digest_date=row.digest_date,
        status=row.status,
        watermark=row.watermark,
        attempts=row.attempts,
        error=row.error,
        external_id=row.external_id,
        progress=json.loads(row.progress or "{}"),
        created_at=utc(row.created_at) or row.created_at,
        updated_at=utc(row.updated_at) or row.updated_at,
        sent_at=utc(row.sent_at),
        papers=papers_,
        paper_count=row.paper_count,
        lease_until=utc(row.lease_until),
    )


def _with_papers(conn: Connection, rows: Sequence[Any]) -> list[DeliveryRecord]:
    by_delivery: dict[int, list[LedgerPaper]] = {}
    for part in _chunks([r.pk for r in rows]):
        query = (
            sa.select(delivery_papers.c.delivery_pk, papers.c.id, delivery_papers.c.score)
            .add_columns(delivery_papers.c.why, delivery_papers.c.paper_pk)
            .join(papers, papers.c.pk == delivery_papers.c.paper_pk)
            .where(delivery_papers.c.delivery_pk.in_(part))
            .order_by(delivery_papers.c.delivery_pk, delivery_papers.c.position)
        )
        for dp in conn.execute(query):
            by_delivery.setdefault(dp.delivery_pk, []).append(
                LedgerPaper(paper_id=dp.id, score=dp.score, why=dp.why, paper_pk=dp.paper_pk)
            )
    return [_record(r, tuple(by_delivery.get(r.pk, ()))) for r in rows]


def load_slots(
    store: SqlStore, *, profile: str, destinations: Sequence[str], digest_date: date
) -> dict[str, list[DeliveryRecord]]:
    """Per destination: its row for ``digest_date`` (any status) and every open older row."""
    out: dict[str, list[DeliveryRecord]] = {d: [] for d in destinations}
    with store.transaction() as conn:
        rows: list[Any] = []
        for part in _chunks(list(destinations)):
            rows.extend(
                conn.execute(
                    sa.select(deliveries)
                    .where(
                        deliveries.c.profile == profile,
                        deliveries.c.destination.in_(part),
                        sa.or_(
                            deliveries.c.digest_date == digest_date,
                            deliveries.c.status.in_(OPEN),
                        ),
                    )
                    .order_by(deliveries.c.digest_date, deliveries.c.pk)
                ).all()
            )
        for record in _with_papers(conn, rows):
            out[record.destination].append(record)
    return out


@dataclass(frozen=True, slots=True)
class SlotState:
    status: str
    updated_at: datetime


def load_slot_states(
    store: SqlStore, *, profiles: Sequence[str], since: date
) -> dict[tuple[str, str, date], SlotState]:
    """(profile, destination, digest date) -> status, for rows dated ``since`` or later.

    One query per thousand profiles: the personal-digest job asks it every minute to
    skip, without ranking anything, everyone whose digest is already settled today.
    """
    out: dict[tuple[str, str, date], SlotState] = {}
    columns = (
        deliveries.c.profile,
        deliveries.c.destination,
        deliveries.c.digest_date,
        deliveries.c.status,
        deliveries.c.updated_at,
    )
    with store.transaction() as conn:
        for part in _chunks(list(profiles)):
            query = sa.select(*columns).where(
                deliveries.c.profile.in_(part), deliveries.c.digest_date >= since
            )
            for row in conn.execute(query):
                updated = utc(row.updated_at)
                assert updated is not None
                key = (row.profile, row.destination, row.digest_date)
                out[key] = SlotState(status=row.status, updated_at=updated)
    return out


def load_watermarks(
    store: SqlStore, *, profile: str, destinations: Sequence[str]
) -> dict[str, int]:
    """Per destination: the highest paper pk already considered by a successful digest."""
    marks = {d: 0 for d in destinations}
    with store.transaction() as conn:
        for part in _chunks(list(destinations)):
            query = (
                sa.select(deliveries.c.destination, sa.func.max(deliveries.c.watermark))
                .where(
                    deliveries.c.profile == profile,
                    deliveries.c.destination.in_(part),
                    deliveries.c.status.in_(DONE),
                )
                .group_by(deliveries.c.destination)
            )
            for destination, mark in conn.execute(query):
                marks[destination] = int(mark or 0)
    return marks


def load_unsent(
    store: SqlStore, *, watermarks: dict[str, int], also: Collection[int] = ()
) -> tuple[dict[str, int], dict[str, set[int]], int]:
    """Papers newer than the lowest watermark (id -> pk), and those in ``also`` (pks: left
    out of a digest, ``load_left_out``), what each destination already got among the
    newer ones, and the current highest paper pk (the next watermark)."""
    low = min(watermarks.values(), default=0)
    with store.transaction() as conn:
        top = int(
            conn.execute(sa.select(sa.func.coalesce(sa.func.max(papers.c.pk), 0))).scalar_one()
        )
        ids = {
            row.id: row.pk
            for row in conn.execute(sa.select(papers.c.pk, papers.c.id).where(papers.c.pk > low))
        }
        for part in _chunks(sorted(set(also))):
            query = sa.select(papers.c.pk, papers.c.id).where(papers.c.pk.in_(part))
            ids.update({row.id: row.pk for row in conn.execute(query)})
        sent: dict[str, set[int]] = {d: set() for d in watermarks}
        for part in _chunks(list(watermarks)):
            query = sa.select(sent_papers.c.destination, sent_papers.c.paper_pk).where(
                sent_papers.c.destination.in_(part), sent_papers.c.paper_pk > low
            )
            for destination, pk in conn.execute(query):
                sent[destination].add(pk)
    return ids, sent, top


LEFT_OUT = "left_out"  # progress key: papers of the digest its message did not carry
# how long a paper left out of a cut email stays owed to that reader (by the cut digest's
# date): a weekly reader's next digest is 7 days on, a daily reader gets 7 more digests;
# the weekly pool is the past 7 days as well, so an older paper is no longer news
LEFT_OUT_DAYS = 7


def load_left_out(
    store: SqlStore,
    *,
    profile: str,
    watermarks: Mapping[str, int],
    since: date | None = None,
) -> dict[str, set[int]]:
    """Per destination: the papers (pk) a successful digest recorded but did not carry (an
    email cut to fit the mail server's size limit: ``progress["left_out"]``) and that were
    not sent there since: its latest digest's (the one whose watermark it holds), and
    those of its digests dated ``since`` or later. Never counted as sent, they are owed to
    that destination's digests until sent (outranked in one, still owed to the next)."""
    out: dict[str, set[int]] = {d: set() for d in watermarks}
    low = min(watermarks.values(), default=0)
    recent = deliveries.c.watermark >= low
    if since is not None:
        recent = sa.or_(recent, deliveries.c.digest_date >= since)
    not_sent = ~sa.exists().where(
        sent_papers.c.destination == deliveries.c.destination,
        sent_papers.c.paper_pk == delivery_papers.c.paper_pk,
    )
    with store.transaction() as conn:
        for part in _chunks(list(watermarks)):
            query = (
                sa.select(
                    deliveries.c.destination, deliveries.c.watermark, deliveries.c.digest_date
                )
                .add_columns(delivery_papers.c.paper_pk)
                .join(delivery_papers, delivery_papers.c.delivery_pk == deliveries.c.pk)
                .where(
                    deliveries.c.profile == profile,
                    deliveries.c.destination.in_(part),
                    deliveries.c.status == "sent",
                    deliveries.c.progress.contains(f'"{LEFT_OUT}"', autoescape=True),
                    recent,
                    not_sent,
                )
            )
            for destination, watermark, day, pk in conn.execute(query):
                if watermark == watermarks[destination] or (since is not None and day >= since):
                    out[destination].add(pk)
    return out


def load_seen_since(store: SqlStore, *, since: datetime) -> set[int]:
    """The pks of the papers first seen at ``since`` or later (one query)."""
    query = sa.select(papers.c.pk).where(papers.c.first_seen >= naive_utc(since))
    with store.transaction() as conn:
        return {row[0] for row in conn.execute(query)}


def record_deliveries(
    store: SqlStore, new: Sequence[NewDelivery], *, now: datetime
) -> tuple[list[DeliveryRecord], list[NewDelivery]]:
    """Insert digest rows with their papers. Returns (recorded, lost races).

    One transaction for the batch; if another process took one of the slots, each
    row is retried alone so the others still go in.
    """
    if not new:
        return [], []
    try:
        with store.transaction() as conn:
            return _insert(conn, new, now=now), []
    except StoreError:
        pass
    recorded: list[DeliveryRecord] = []
    lost: list[NewDelivery] = []
    for item in new:
        try:
            with store.transaction() as conn:
                recorded.extend(_insert(conn, [item], now=now))
        except StoreError:
            lost.append(item)
    return recorded, lost


def _insert(conn: Connection, new: Sequence[NewDelivery], *, now: datetime) -> list[DeliveryRecord]:
    stamp = naive_utc(now)
    values = [
        {
            "digest_id": n.digest_id,
            "profile": n.profile,
            "destination": n.destination,
            "digest_date": n.digest_date,
            "status": n.status,
            "watermark": n.watermark,
            "paper_count": len(n.papers),
            "attempts": 0,
            "progress": "{}",
            "created_at": stamp,
            "updated_at": stamp,
        }
        for n in new
    ]
    result = conn.execute(
        deliveries.insert().returning(deliveries.c.pk, sort_by_parameter_order=True), values
    )
    pks = [pk for (pk,) in result.all()]
    rows = [
        {"delivery_pk": pk, "paper_pk": paper_pk, "position": i, "score": score, "why": why}
        for pk, n in zip(pks, new, strict=True)
        for i, (paper_pk, score, why) in enumerate(n.papers)
    ]
    if rows:
        conn.execute(delivery_papers.insert(), rows)
    loaded = conn.execute(sa.select(deliveries).where(deliveries.c.pk.in_(pks))).all()
    order = {pk: i for i, pk in enumerate(pks)}
    return sorted(_with_papers(conn, loaded), key=lambda r: order[r.pk])


def claim_deliveries(
    store: SqlStore, pks: Sequence[int], *, token: str, now: datetime, lease: timedelta
) -> set[int]:
    """Take the rows for sending (status pending, attempts + 1) unless another lease holds."""
    stamp = naive_utc(now)
    with store.transaction() as conn:
        for part in _chunks(list(pks)):
            conn.execute(
                deliveries.update()
                .where(
                    deliveries.c.pk.in_(part),
                    deliveries.c.status.in_(OPEN),
                    sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < stamp),
                )
                .values(
                    status="pending",
                    attempts=deliveries.c.attempts + 1,
                    claimed_by=token,
                    lease_until=naive_utc(now + lease),
                    updated_at=stamp,
                )
            )
        claimed: set[int] = set()
        for part in _chunks(list(pks)):
            claimed.update(
                conn.execute(
                    sa.select(deliveries.c.pk).where(
                        deliveries.c.pk.in_(part), deliveries.c.claimed_by == token
                    )
                ).scalars()
            )
    return claimed


def _mark_papers_sent(
    conn: Connection, pk: int, destination: str, paper_ids: Iterable[str] | None, stamp: datetime
) -> None:
    """``sent_papers`` rows for this delivery's papers (or only ``paper_ids``), once each.

    A paper named by the ``t-…`` id it had when the message was made counts too after it
    gained an arXiv id meanwhile (another process merged its listing: its ``tid`` keeps
    that id); only this delivery's papers are looked at."""
    already = sa.exists().where(
        sent_papers.c.destination == destination,
        sent_papers.c.paper_pk == delivery_papers.c.paper_pk,
    )
    source = sa.select(
        sa.literal(destination, sa.String(512)),
        delivery_papers.c.paper_pk,
        sa.literal(pk, sa.Integer),
        sa.literal(stamp, sa.DateTime),
    ).where(delivery_papers.c.delivery_pk == pk, ~already)
    if paper_ids is not None:
        wanted = list(paper_ids)
        if not wanted:
            return
        named = sa.or_(
            papers.c.id.in_(wanted),
            papers.c.tid.in_([w for w in wanted if w.startswith("t-")]),
        )
        source = source.where(delivery_papers.c.paper_pk.in_(sa.select(papers.c.pk).where(named)))
    conn.execute(
        sent_papers.insert().from_select(
            ["destination", "paper_pk", "delivery_pk", "sent_at"], source
        )
    )


def record_part_sent(
    store: SqlStore,
    record: DeliveryRecord,
    *,
    progress: dict[str, Any],
    paper_ids: Sequence[str],
    now: datetime,
) -> None:
    """One part of a multi-message digest went out: save progress and its papers as sent."""
    stamp = naive_utc(now)
    with store.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.pk == record.pk)
            .values(progress=json.dumps(progress), updated_at=stamp)
        )
        _mark_papers_sent(conn, record.pk, record.destination, paper_ids, stamp)


def mark_sent(
    store: SqlStore,
    record: DeliveryRecord,
    *,
    external_id: str | None,
    now: datetime,
    progress: dict[str, Any] | None = None,
) -> None:
    """The destination accepted the whole digest: status sent, every paper counted as sent."""
    stamp = naive_utc(now)
    values: dict[str, Any] = {
        "status": "sent",
        "external_id": external_id,
        "error": None,
        "claimed_by": None,
        "lease_until": None,
        "updated_at": stamp,
        "sent_at": stamp,
    }
    if progress is not None:
        values["progress"] = json.dumps(progress)
    with store.transaction() as conn:
        conn.execute(deliveries.update().where(deliveries.c.pk == record.pk).values(values))
        _mark_papers_sent(conn, record.pk, record.destination, None, stamp)


def mark_failed(store: SqlStore, record: DeliveryRecord, *, error: str, now: datetime) -> None:
    with store.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.pk == record.pk)
            .values(
                status="failed",
                error=error[:2000],
                claimed_by=None,
                lease_until=None,
                updated_at=naive_utc(now),
            )
        )


def mark_rejected(store: SqlStore, record: DeliveryRecord, *, error: str, now: datetime) -> None:
    """Slack (or the mail server) refused the digest for its content, in every form:
    settled, never retried."""
    with store.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.pk == record.pk)
            .values(
                status=REJECTED,
                error=error[:2000],
                claimed_by=None,
                lease_until=None,
                updated_at=naive_utc(now),
            )
        )


def load_rejected_papers(
    store: SqlStore, *, destinations: Sequence[str], limit: int = REJECTED_LIMIT
) -> dict[str, set[int]]:
    """Per destination: the papers (pk) in at least ``limit`` rejected digests to it; they
    are not offered to it again."""
    out: dict[str, set[int]] = {d: set() for d in destinations}
    with store.transaction() as conn:
        for part in _chunks(list(destinations)):
            query = (
                sa.select(deliveries.c.destination, delivery_papers.c.paper_pk)
                .join(deliveries, deliveries.c.pk == delivery_papers.c.delivery_pk)
                .where(deliveries.c.destination.in_(part), deliveries.c.status == REJECTED)
                .group_by(deliveries.c.destination, delivery_papers.c.paper_pk)
                .having(sa.func.count() >= limit)
            )
            for destination, pk in conn.execute(query):
                out[destination].add(pk)
    return out


def mark_superseded(store: SqlStore, records: Sequence[DeliveryRecord], *, now: datetime) -> None:
    """Older unsent digests: their unsent papers roll into the next digest for that place."""
    if not records:
        return
    with store.transaction() as conn:
        for part in _chunks([r.pk for r in records]):
            conn.execute(
                deliveries.update()
                .where(deliveries.c.pk.in_(part), deliveries.c.status.in_(OPEN))
                .values(status="superseded", claimed_by=None, lease_until=None)
                .values(updated_at=naive_utc(now))
            )


def load_history(
    store: SqlStore, *, profile: str | None = None, limit: int = 200
) -> list[DeliveryRecord]:
    """Digest rows, newest first, with their papers."""
    query = sa.select(deliveries).order_by(
        deliveries.c.digest_date.desc(), deliveries.c.updated_at.desc(), deliveries.c.pk.desc()
    )
    if profile is not None:
        query = query.where(deliveries.c.profile == profile)
    with store.transaction() as conn:
        rows = conn.execute(query.limit(limit)).all()
        return _with_papers(conn, rows)


def count_sent(store: SqlStore, *, destination: str) -> int:
    """How many papers a destination has received."""
    with store.transaction() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(sent_papers)
                .where(sent_papers.c.destination == destination)
            ).scalar_one()
        )


def mark_sent_many(
    store: SqlStore,
    items: Sequence[tuple[DeliveryRecord, str | None]],
    *,
    now: datetime,
    progress: Mapping[int, dict[str, Any]] | None = None,
    only: Mapping[int, Sequence[str]] | None = None,
) -> None:
    """``mark_sent`` for a run of accepted messages (record, external id), one transaction:
    a newsletter's thousands of readers are not a transaction each. ``progress`` (by record
    pk) is saved with the row (how it went out: ``{"form": "plain", ...}``); a record in
    ``only`` (by pk) had only those papers in its message: the others are not counted as
    sent (``load_left_out`` offers them to the next digests)."""
    if not items:
        return
    stamp = naive_utc(now)
    notes = progress or {}
    partial = only or {}
    with store.transaction() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.pk == sa.bindparam("b_pk"))
            .values(
                status="sent",
                external_id=sa.bindparam("b_external"),
                error=None,
                claimed_by=None,
                lease_until=None,
                updated_at=stamp,
                sent_at=stamp,
            ),
            [{"b_pk": record.pk, "b_external": external} for record, external in items],
        )
        noted = [
            {"b_pk": record.pk, "b_progress": json.dumps({**record.progress, **notes[record.pk]})}
            for record, _ in items
            if record.pk in notes
        ]
        if noted:
            conn.execute(
                deliveries.update()
                .where(deliveries.c.pk == sa.bindparam("b_pk"))
                .values(progress=sa.bindparam("b_progress")),
                noted,
            )
        for record, _ in items:
            if record.pk in partial:
                _mark_papers_sent(conn, record.pk, record.destination, partial[record.pk], stamp)
        whole = [record.pk for record, _ in items if record.pk not in partial]
        for part in _chunks(whole):
            already = sa.exists().where(
                sent_papers.c.destination == deliveries.c.destination,
                sent_papers.c.paper_pk == delivery_papers.c.paper_pk,
            )
            source = (
                sa.select(
                    deliveries.c.destination,
                    delivery_papers.c.paper_pk,
                    delivery_papers.c.delivery_pk,
                    sa.literal(stamp, sa.DateTime),
                )
                .join(deliveries, deliveries.c.pk == delivery_papers.c.delivery_pk)
                .where(delivery_papers.c.delivery_pk.in_(part), ~already)
            )
            conn.execute(
                sent_papers.insert().from_select(
                    ["destination", "paper_pk", "delivery_pk", "sent_at"], source
                )
            )


@dataclass(frozen=True, slots=True)
class PaperDelivery:
    """One digest that held a paper (``digestbot show``): ``sent_at`` when that destination
    accepted the message carrying it (None: not sent, or left out of a cut email)."""

    profile: str
    destination: str
    digest_date: date
    status: str
    position: int
    sent_at: datetime | None


def load_paper_deliveries(store: SqlStore, paper_id: str) -> list[PaperDelivery]:
    """Every digest that held one paper (by its stored id), oldest first: one query."""
    carried = sa.and_(
        sent_papers.c.delivery_pk == deliveries.c.pk,
        sent_papers.c.paper_pk == delivery_papers.c.paper_pk,
    )
    query = (
        sa.select(
            deliveries.c.profile,
            deliveries.c.destination,
            deliveries.c.digest_date,
            deliveries.c.status,
            delivery_papers.c.position,
            sent_papers.c.sent_at,
        )
        .select_from(
            delivery_papers.join(deliveries, deliveries.c.pk == delivery_papers.c.delivery_pk)
            .join(papers, papers.c.pk == delivery_papers.c.paper_pk)
            .outerjoin(sent_papers, carried)
        )
        .where(papers.c.id == paper_id)
        .order_by(deliveries.c.digest_date, deliveries.c.pk)
    )
    with store.transaction() as conn:
        rows = conn.execute(query).all()
    return [
        PaperDelivery(
            profile=r.profile,
            destination=r.destination,
            digest_date=r.digest_date,
            status=r.status,
            position=r.position,
            sent_at=utc(r.sent_at),
        )
        for r in rows
    ]
