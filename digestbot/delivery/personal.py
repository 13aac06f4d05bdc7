"""Personal digests: the terms a person follows (``/papers follow``), by direct message.

Each personal profile (``personal_profiles``) is a digest profile named
``@<user id>`` (``@`` cannot start a configured profile's name, so the ledger's
rows never mix) with one target, ``slack:<user id>``: ``chat.postMessage`` to a
user id posts in the app's direct-message conversation with that person. Its
schedule is daily at the person's chosen local time in their Slack timezone.

``send_personal_due`` is asked every minute by the daemon (and by ``run --once``):
it sends to everyone whose time has come today, within ``misfire_grace``, whose
digest for today is not settled. The ledger decides, as for any digest: one
digest per person and local day; a failed one is tried again after
``RETRY_AFTER`` while still within the grace. The buttons of a personal digest
carry the profile ``@<user id>``, which the Slack app reads as "the clicking
person's own profile".
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from digestbot.config import Profile, Settings, parse_duration
from digestbot.delivery.outcomes import SendReport, digest_date_for
from digestbot.delivery.service import OnOutcome, send_profile
from digestbot.delivery.targets import Deliverers, build_deliverers, slack_target
from digestbot.store import SqlStore, ledger
from digestbot.store.slack import PersonalProfile, load_personal_profiles
from digestbot.timing import last_fire_time, send_time

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(minutes=10)
ASKED_EVERY = timedelta(minutes=1)  # scheduler.PERSONAL_SECONDS: how often the daemon asks


def _due(
    profiles: Sequence[tuple[PersonalProfile, Profile]],
    store: SqlStore,
    *,
    now: datetime,
    grace: timedelta,
) -> list[tuple[PersonalProfile, Profile, datetime]]:
    """Those whose time has come within the grace and whose digest is not settled."""
    fired = []
    for personal, profile in profiles:
        fire = last_fire_time(profile.schedule, now=now, grace=grace)
        if fire is not None:
            fired.append((personal, profile, fire))
    if not fired:
        return []
    since = min(digest_date_for(p, now) for _, p, _ in fired) - timedelta(days=1)
    states = ledger.load_slot_states(store, profiles=[p.name for _, p, _ in fired], since=since)
    due = []
    for personal, profile, fire in fired:
        at = send_time(profile.schedule, fire=fire, now=now)
        key = (profile.name, slack_target(personal.user_id).key, digest_date_for(profile, at))
        state = states.get(key)
        if state is not None and state.status in (*ledger.DONE, ledger.REJECTED):
            continue  # settled today (rejected: Slack refused it; tomorrow's goes out)
        if state is not None and state.status == "failed" and now - state.updated_at < RETRY_AFTER:
            continue
        due.append((personal, profile, fire))
    return due


def send_personal_due(
    settings: Settings,
    store: SqlStore,
    *,
    now: datetime,
    deliverers: Deliverers | None = None,
    on_outcome: OnOutcome | None = None,
) -> SendReport:
    """Send every personal digest that is due now; see the module docstring."""
    # asked once a minute: a time is met up to a minute late even with a smaller grace
    grace = max(timedelta(seconds=parse_duration(settings.misfire_grace)), ASKED_EVERY * 2)
    profiles = []
    for personal in load_personal_profiles(store):
        profile = personal.digest_profile()
        if profile is not None:
            profiles.append((personal, profile))
    report = SendReport()
    due = _due(profiles, store, now=now, grace=grace)
    if not due:
        return report
    if deliverers is None:
        deliverers = build_deliverers(settings)
    for personal, profile, fire in due:
        log.info("personal digest for %s (due %s)", personal.user_id, fire.isoformat())
        outcomes = send_profile(
            settings,
            store,
            profile,
            [slack_target(personal.user_id)],
            now=now,
            as_of=send_time(profile.schedule, fire=fire, now=now),
            deliverers=deliverers,
        )
        for outcome in outcomes:
            if on_outcome is not None:
                on_outcome(outcome)
        report.outcomes.extend(outcomes)
    return report
