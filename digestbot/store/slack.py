"""Slack state set from ``/papers``: channel subscriptions and personal profiles.

``channel_subscriptions``: a channel gets a configured profile's scheduled
digest, beside the profile's ``deliver`` list in the config
(``load_channel_subscriptions(store, profile)`` gives the delivery side the
channel ids). ``personal_profiles``: one row per Slack user: the terms they
follow, and when (local time, their Slack timezone) they want them by DM.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from digestbot.config import Profile, Schedule
from digestbot.store.schema import metadata
from digestbot.store.sql import SqlStore, naive_utc

DEFAULT_DELIVERY_TIME = "08:00"
DEFAULT_TIMEZONE = "UTC"

channel_subscriptions = sa.Table(
    "channel_subscriptions",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("channel_id", sa.String(64), nullable=False),
    sa.Column("profile", sa.String(255), nullable=False, index=True),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("channel_id", "profile", name="uq_channel_subscription"),
)

personal_profiles = sa.Table(
    "personal_profiles",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("terms", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("delivery_time", sa.String(5), nullable=False, server_default=DEFAULT_DELIVERY_TIME),
    sa.Column("timezone", sa.String(64), nullable=False, server_default=DEFAULT_TIMEZONE),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)


PERSONAL_PREFIX = "@"  # a personal profile's name: "@" and the Slack user id


def personal_profile_name(user_id: str) -> str:
    """The name of a person's profile (``personal_user`` reads it back)."""
    return f"{PERSONAL_PREFIX}{user_id}"


def personal_user(profile_name: str) -> str | None:
    """The Slack user whose personal profile this is; None for a configured profile."""
    return (
        profile_name[len(PERSONAL_PREFIX) :] if profile_name.startswith(PERSONAL_PREFIX) else None
    )


@dataclass(frozen=True, slots=True)
class PersonalProfile:
    user_id: str
    terms: tuple[str, ...] = ()
    delivery_time: str = DEFAULT_DELIVERY_TIME
    timezone: str = DEFAULT_TIMEZONE

    def digest_profile(self) -> Profile | None:
        """The profile of the person's digest and `/papers today`: ``as_profile()`` named
        ``@<user id>`` (whose votes are the person's own) and scheduled at their time; the
        name is set without re-validation, since ``@`` is (on purpose) not allowed in
        configured names. ``None`` while nothing is followed."""
        base = self.as_profile()
        if base is None:
            return None
        return base.model_copy(
            update={
                "name": personal_profile_name(self.user_id),
                "schedule": self.as_schedule(),
            }
        )

    def as_profile(self) -> Profile | None:
        """A ranking profile over the followed terms (``None`` while nothing is followed)."""
        if not self.terms:
            return None
        return Profile(name=f"user-{self.user_id.lower()}", keywords=list(self.terms))

    def as_schedule(self) -> Schedule:
        """Daily at the chosen ``HH:MM`` in the person's timezone."""
        hour, minute = (int(part) for part in self.delivery_time.split(":"))
        return Schedule(cron=f"{minute} {hour} * * *", timezone=self.timezone)


# -- channel subscriptions ---------------------------------------------------------------------
def record_subscription(
    store: SqlStore, *, channel_id: str, profile: str, user_id: str, now: datetime
) -> bool:
    """Subscribe a channel to a profile; ``False`` if it already was."""
    with store.transaction() as conn:
        known = conn.execute(
            sa.select(channel_subscriptions.c.pk).where(
                channel_subscriptions.c.channel_id == channel_id,
                channel_subscriptions.c.profile == profile,
            )
        ).first()
        if known is not None:
            return False
        conn.execute(
            channel_subscriptions.insert().values(
                channel_id=channel_id,
                profile=profile,
                created_by=user_id,
                created_at=naive_utc(now),
            )
        )
    return True


def delete_subscriptions(store: SqlStore, *, channel_id: str, profile: str | None = None) -> int:
    """Unsubscribe a channel from one profile (or all); the number removed."""
    query = channel_subscriptions.delete().where(channel_subscriptions.c.channel_id == channel_id)
    if profile is not None:
        query = query.where(channel_subscriptions.c.profile == profile)
    with store.transaction() as conn:
        return int(conn.execute(query).rowcount)


def _subscribed(
    store: SqlStore, column: sa.Column[str], *, where: sa.ColumnElement[bool]
) -> list[str]:
    query = (
        sa.select(column)
        .where(where)
        .order_by(channel_subscriptions.c.created_at, channel_subscriptions.c.pk)
    )
    with store.transaction() as conn:
        return [str(value) for value in conn.scalars(query)]


def load_channel_profiles(store: SqlStore, channel_id: str) -> list[str]:
    """The profiles a channel is subscribed to, oldest subscription first."""
    table = channel_subscriptions.c
    return _subscribed(store, table.profile, where=table.channel_id == channel_id)


def load_channel_subscriptions(store: SqlStore, profile: str) -> list[str]:
    """The channel ids subscribed to a profile (for the delivery side), oldest first."""
    table = channel_subscriptions.c
    return _subscribed(store, table.channel_id, where=table.profile == profile)


# -- personal profiles -------------------------------------------------------------------------
def _personal_from_row(row: Any) -> PersonalProfile:
    return PersonalProfile(
        user_id=row.user_id,
        terms=tuple(json.loads(row.terms)),
        delivery_time=row.delivery_time,
        timezone=row.timezone,
    )


_PERSONAL_COLUMNS = (
    personal_profiles.c.user_id,
    personal_profiles.c.terms,
    personal_profiles.c.delivery_time,
    personal_profiles.c.timezone,
)


def load_personal_profile(store: SqlStore, user_id: str) -> PersonalProfile:
    """A user's personal profile (an empty one if they never set it up)."""
    with store.transaction() as conn:
        row = conn.execute(
            sa.select(*_PERSONAL_COLUMNS).where(personal_profiles.c.user_id == user_id)
        ).first()
    return _personal_from_row(row) if row is not None else PersonalProfile(user_id=user_id)


def load_personal_profiles(store: SqlStore) -> list[PersonalProfile]:
    """Every personal profile that follows at least one term (for the DM scheduler)."""
    with store.transaction() as conn:
        rows = conn.execute(sa.select(*_PERSONAL_COLUMNS).order_by(personal_profiles.c.user_id))
        found = [_personal_from_row(row) for row in rows]
    return [p for p in found if p.terms]


def upsert_personal_profile(store: SqlStore, profile: PersonalProfile, *, now: datetime) -> None:
    """Write a user's personal profile (one transaction, replace-or-insert)."""
    values = {
        "terms": json.dumps(list(profile.terms), ensure_ascii=False),
        "delivery_time": profile.delivery_time,
        "timezone": profile.timezone,
        "updated_at": naive_utc(now),
    }
    with store.transaction() as conn:
        updated = conn.execute(
            personal_profiles.update()
            .where(personal_profiles.c.user_id == profile.user_id)
            .values(values)
        ).rowcount
        if not updated:
            conn.execute(personal_profiles.insert().values(user_id=profile.user_id, **values))
