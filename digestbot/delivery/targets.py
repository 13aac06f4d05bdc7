"""Where a profile's digests go (ledger destination keys) and the deliverers that take them.

A profile's ``deliver`` entries expand to targets with stable keys: ``slack:C0123``,
``slack-webhook:<hash of the URL>`` (the URL is a secret), ``email:<address>`` (one
target per recipient) and ``file:<dir>:<format>``.

``collect_targets`` is where a scheduled digest's targets are gathered: the config's
``deliver`` list, then the channels subscribed with ``/papers subscribe`` (same
``slack:<channel>`` key as a configured channel, so a channel in both gets one
digest), then the newsletter's subscribers; the first target with a key wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Literal

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from digestbot.config import FileTarget, Profile, Settings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.files import FileDeliverer
from digestbot.delivery.slack import SlackDeliverer, WebhookDeliverer
from digestbot.store import SqlStore
from digestbot.store.slack import load_channel_subscriptions, personal_profile_name

TargetKind = Literal["slack", "webhook", "email", "file"]


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    kind: TargetKind
    channel: str = ""
    recipient: str = ""
    file: FileTarget | None = None
    cadence: Literal["daily", "weekly"] = "daily"  # weekly: newsletter subscribers


def webhook_key(url: str) -> str:
    return "slack-webhook:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]


def expand_targets(profile: Profile) -> list[Target]:
    """The profile's destinations, one per Slack place, recipient and folder; no repeats."""
    targets: dict[str, Target] = {}
    for dest in profile.deliver:
        if dest.slack is not None and dest.slack.channel is not None:
            target = slack_target(dest.slack.channel)
            targets.setdefault(target.key, target)
        elif dest.slack is not None and dest.slack.webhook_url is not None:
            key = webhook_key(dest.slack.webhook_url.get_secret_value())
            targets.setdefault(key, Target(key=key, kind="webhook"))
        elif dest.email is not None:
            for recipient in dest.email.to:
                address = parseaddr(recipient)[1] or recipient
                key = f"email:{address.strip().lower()}"
                targets.setdefault(key, Target(key=key, kind="email", recipient=recipient))
        elif dest.file is not None:
            key = f"file:{Path(dest.file.path).resolve()}:{dest.file.format}"
            targets.setdefault(key, Target(key=key, kind="file", file=dest.file))
    return list(targets.values())


def slack_target(channel: str) -> Target:
    """A Slack channel (or a user id, for a direct message) posted to with the bot token."""
    return Target(key=f"slack:{channel}", kind="slack", channel=channel)


def load_subscribed_targets(store: SqlStore, profile: Profile) -> list[Target]:
    """The channels subscribed to the profile with ``/papers subscribe``, oldest first."""
    return [slack_target(c) for c in load_channel_subscriptions(store, profile.name)]


def collect_targets(
    settings: Settings, store: SqlStore, profile: Profile, *, now: datetime
) -> list[Target]:
    """Every destination of the profile's scheduled digest, once each (by key): its config
    targets, the channels subscribed with ``/papers subscribe``, and its newsletter
    subscribers (``digestbot.newsletter.subscriber_targets``; weekly ones only on
    ``email.weekly_day``). A channel both configured and subscribed is one target; a config
    recipient who is also a subscriber stays daily. Addresses that unsubscribed or bounce
    get nothing, config recipients included."""
    from digestbot.newsletter import subscriber_targets
    from digestbot.store.subscribers import load_opted_out

    found: dict[str, Target] = {}
    for target in [
        *expand_targets(profile),
        *load_subscribed_targets(store, profile),
        *subscriber_targets(store, profile, now=now, weekly_day=settings.email.weekly_day),
    ]:
        found.setdefault(target.key, target)
    opted_out = {f"email:{a}" for a in load_opted_out(store, profile=profile.name)}
    return [t for key, t in found.items() if key not in opted_out]


def load_live_destinations(settings: Settings, store: SqlStore) -> set[tuple[str, str]]:
    """(profile, destination) of every place a digest may still be sent, on any day: each
    configured profile's config targets, subscribed channels and active subscribers (weekly
    ones too, whatever today is), less opted-out addresses; and each personal profile
    (``@<user>``, in the database only) with its direct message. An unsent digest to
    anywhere else is never retried: its profile or destination is gone."""
    from digestbot.store.slack import load_personal_profiles
    from digestbot.store.subscribers import load_opted_out, load_subscribers

    live: set[tuple[str, str]] = set()
    for profile in settings.profiles:
        keys = [t.key for t in (*expand_targets(profile), *load_subscribed_targets(store, profile))]
        subscribed = load_subscribers(store, profile=profile.name, statuses=("active",))
        keys.extend(f"email:{s.address}" for s in subscribed)
        opted_out = {f"email:{a}" for a in load_opted_out(store, profile=profile.name)}
        live.update((profile.name, key) for key in keys if key not in opted_out)
    for person in load_personal_profiles(store):  # see delivery.personal
        live.add((personal_profile_name(person.user_id), slack_target(person.user_id).key))
    return live


@dataclass
class Deliverers:
    """The services that deliver; built from the settings, or given by a test."""

    slack: SlackDeliverer | None = None
    webhooks: dict[str, WebhookDeliverer] = field(default_factory=dict)  # by target key
    email: EmailDeliverer | None = None
    files: FileDeliverer = field(default_factory=FileDeliverer)


def build_deliverers(settings: Settings) -> Deliverers:
    """Real clients for every destination the settings name (nothing connects yet)."""
    slack = None
    if settings.slack.bot_token is not None:
        client = WebClient(
            token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.base_url
        )
        slack = SlackDeliverer(client)
    webhooks: dict[str, WebhookDeliverer] = {}
    for profile in settings.profiles:
        for dest in profile.deliver:
            if dest.slack is not None and dest.slack.webhook_url is not None:
                url = dest.slack.webhook_url.get_secret_value()
                key = webhook_key(url)
                webhooks[key] = WebhookDeliverer(WebhookClient(url), label=key)
    smtp = settings.email.smtp  # always: newsletter subscribers live in the database
    email = EmailDeliverer(  # nothing connects until a mail is sent
        build_smtp_factory(smtp),
        sender=settings.email.sender,
        reply_to=settings.email.reply_to,
        label=f"smtp {smtp.host}:{smtp.port}",
        connections=smtp.connections,
    )
    return Deliverers(slack=slack, webhooks=webhooks, email=email)
