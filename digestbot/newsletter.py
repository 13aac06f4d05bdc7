"""The newsletter side of email delivery: subscriber targets, cadence, unsubscribe tokens.

A token names (profile, address) and carries an HMAC-SHA256 over both, keyed with
``email.unsubscribe_secret``: ``base64url(profile "\\n" address) "." base64url(mac)``.
It needs no database row, cannot be altered or moved to another address without the
secret, and is checked in constant time.

Weekly subscribers are targets only on ``email.weekly_day`` (in the profile's time
zone); their digest is the best papers first seen in the 7 days before ``now`` that
were never sent to that address. They share the ``email:<address>`` destination key
with config recipients, so the ledger's "sent once" promise covers both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import quote

from digestbot.config import Profile, Settings
from digestbot.delivery.email import TOKEN_SLOT
from digestbot.delivery.outcomes import digest_date_for
from digestbot.delivery.targets import Target
from digestbot.errors import TokenError
from digestbot.store import SqlStore, ledger
from digestbot.store.subscribers import load_subscribers

log = logging.getLogger(__name__)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEK = timedelta(days=7)
UNSUBSCRIBE_PATH = "/unsubscribe"
_CONTEXT = b"digestbot-unsubscribe\x00"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, profile: str, address: str) -> bytes:
    message = _CONTEXT + profile.encode("utf-8") + b"\x00" + address.encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def make_token(secret: str, *, profile: str, address: str) -> str:
    """The reader's unsubscribe token (URL-safe, no padding)."""
    payload = _b64(f"{profile}\n{address}".encode())
    return f"{payload}.{_b64(_mac(secret, profile, address))}"


def read_token(secret: str, token: str) -> tuple[str, str]:
    """(profile, address) from a token we made; ``TokenError`` for anything else."""
    payload, dot, signature = token.strip().partition(".")
    if not dot or not payload or not signature or len(token) > 2000:
        raise TokenError("not an unsubscribe token", is_malformed=True)
    try:
        profile, newline, address = _unb64(payload).decode("utf-8").partition("\n")
        given = _unb64(signature)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise TokenError("not an unsubscribe token", is_malformed=True) from exc
    if not newline or not profile or not address:
        raise TokenError("not an unsubscribe token", is_malformed=True)
    if not hmac.compare_digest(given, _mac(secret, profile, address)):
        raise TokenError("this unsubscribe link is not valid (altered or not ours)")
    return profile, address


def unsubscribe_url(public_url: str, token: str = TOKEN_SLOT) -> str:
    """``{public_url}/unsubscribe?t=TOKEN`` (the slot stands in for each reader's token)."""
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}?t={quote(token, safe='.-_')}"


def is_weekly_day(profile: Profile, now: datetime, *, weekly_day: str) -> bool:
    return WEEKDAYS[digest_date_for(profile, now).weekday()] == weekly_day


def week_label(day: date) -> str:
    """The 7 days before ``day``: ``16–22 Nov``, ``30 Nov–6 Dec`` or ``28 Dec 2026–3 Jan 2027``."""
    start, end = day - WEEK, day - timedelta(days=1)
    if start.year != end.year:
        return f"{start.day} {start:%b %Y}–{end.day} {end:%b %Y}"
    if start.month != end.month:
        return f"{start.day} {start:%b}–{end.day} {end:%b}"
    return f"{start.day}–{end.day} {end:%b}"


def subscriber_targets(
    store: SqlStore, profile: Profile, *, now: datetime, weekly_day: str = "mon"
) -> list[Target]:
    """The profile's active subscribers as email targets: daily ones always, weekly ones
    on ``weekly_day`` (in the profile's time zone), and on the other days while their
    last weekly digest is still unsent (it failed: it is retried, not lost)."""
    weekly = is_weekly_day(profile, now, weekly_day=weekly_day)
    owed = set() if weekly else owed_weekly(store, profile, now=now)
    return [
        Target(key=f"email:{s.address}", kind="email", recipient=s.address, cadence=s.cadence)
        for s in load_subscribers(store, profile=profile.name, statuses=("active",))
        if s.cadence == "daily" or weekly or f"email:{s.address}" in owed
    ]


def owed_weekly(store: SqlStore, profile: Profile, *, now: datetime) -> set[str]:
    """Destinations with an unsent digest of this profile from the past six days."""
    since = digest_date_for(profile, now) - (WEEK - timedelta(days=1))
    states = ledger.load_slot_states(store, profiles=[profile.name], since=since)
    return {dest for (_, dest, _), state in states.items() if state.status in ledger.OPEN}


def address_of(target: Target) -> str:
    """The normalised address an email target's ledger key names."""
    return target.key.removeprefix("email:")


_warned: set[str] = set()


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """How a profile's mails offer unsubscribing: a one-click URL (with ``TOKEN_SLOT``)
    when ``server.public_url`` and ``email.unsubscribe_secret`` are set, else mailto only."""

    url: str = ""
    secret: str = field(default="", repr=False)

    def token_for(self, *, profile: str, address: str) -> str:
        return make_token(self.secret, profile=profile, address=address) if self.url else ""


def build_unsubscribe(settings: Settings) -> Unsubscribe:
    secret = settings.email.unsubscribe_secret
    public_url = settings.server.public_url
    if secret is not None and secret.get_secret_value() and public_url:
        return Unsubscribe(url=unsubscribe_url(public_url), secret=secret.get_secret_value())
    if "one-click" not in _warned:
        _warned.add("one-click")
        log.warning(
            "emails carry a mailto List-Unsubscribe only: set server.public_url and "
            "email.unsubscribe_secret for one-click unsubscribe links"
        )
    return Unsubscribe()
