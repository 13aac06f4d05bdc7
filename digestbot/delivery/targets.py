"""Where a profile's digests go (ledger destination keys) and the deliverers that take them.

A profile's ``deliver`` entries expand to targets with stable keys: ``slack:C0123``,
``slack-webhook:<hash of the URL>`` (the URL is a secret), ``email:<address>`` (one
target per recipient) and ``file:<dir>:<format>``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from digestbot.config import FileTarget, Profile, Settings
from digestbot.delivery.email import EmailDeliverer, build_smtp_factory
from digestbot.delivery.files import FileDeliverer
from digestbot.delivery.slack import SlackDeliverer, WebhookDeliverer

if TYPE_CHECKING:
    from digestbot.store import SqlStore

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
            key = f"slack:{dest.slack.channel}"
            targets.setdefault(key, Target(key=key, kind="slack", channel=dest.slack.channel))
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


def collect_targets(
    settings: Settings, store: SqlStore, profile: Profile, *, now: datetime
) -> list[Target]:
    """Every destination of the profile: its config targets, then its newsletter
    subscribers (``digestbot.newsletter.subscriber_targets``; weekly ones only on
    ``email.weekly_day``). Addresses that unsubscribed
    or bounce get nothing, config recipients included; one target per key."""
    from digestbot.newsletter import subscriber_targets
    from digestbot.store.subscribers import load_opted_out

    targets = {t.key: t for t in expand_targets(profile)}
    for target in subscriber_targets(store, profile, now=now, weekly_day=settings.email.weekly_day):
        targets.setdefault(target.key, target)  # a config recipient stays daily
    opted_out = {f"email:{a}" for a in load_opted_out(store, profile=profile.name)}
    return [t for key, t in targets.items() if key not in opted_out]


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
