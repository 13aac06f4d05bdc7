"""``/papers``: what each subcommand answers. No Slack I/O here (the app wires it).

Every answer is a message payload ``{"text", "blocks"}``; untrusted text (paper
fields, what the person typed, profile descriptions) is escaped for mrkdwn.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from digestbot.config import Profile, Settings
from digestbot.errors import NotFoundError
from digestbot.pipeline import rank_profile
from digestbot.ranking import pick
from digestbot.render import clip, escape_mrkdwn
from digestbot.slack_answers import PERSONAL, more_button_value, render_answer, text_answer
from digestbot.store import SqlStore
from digestbot.store.search import search_papers
from digestbot.store.slack import (
    DEFAULT_TIMEZONE,
    PersonalProfile,
    delete_subscriptions,
    load_channel_profiles,
    load_personal_profile,
    record_subscription,
    upsert_personal_profile,
)

PAGE = 5
MAX_FOLLOWED = 30
MAX_TERM = 64
MAX_SHOWN_QUERY = 300  # characters of the search echoed back in a header
_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")

USAGE = "\n".join(
    [
        "*/papers* — research papers from digestbot. Answers are only visible to you.",
        "• `/papers search <words>` — full-text search over every stored paper",
        "• `/papers today [profile]` — today's top papers (default: this channel's profile)",
        "• `/papers like <paper id>` — papers similar to that one",
        "• `/papers subscribe <profile>` / `/papers unsubscribe [profile]` — channel digests",
        "• `/papers follow <terms, comma separated>` / `/papers unfollow <terms>` — your digest",
        "• `/papers me` — what you follow and when · `/papers time 08:30` — your delivery time",
        "• `/papers profiles` — the profiles and this channel's subscriptions",
    ]
)
SUBCOMMANDS = frozenset(
    {"help", "search", "today", "like", "subscribe", "unsubscribe", "follow", "unfollow"}
    | {"me", "time", "profiles"}
)


def split_command(text: str) -> tuple[str, str]:
    """``"Search linear attention"`` -> ``("search", "linear attention")``."""
    head, _, rest = text.strip().partition(" ")
    return head.lower(), rest.strip()


def is_answered_at_once(sub: str) -> bool:
    """Usage (for help and unknown subcommands) goes straight into the acknowledgement."""
    return sub in ("", "help") or sub not in SUBCOMMANDS


def usage_answer(sub: str = "") -> dict[str, Any]:
    if sub in ("", "help"):
        return text_answer(USAGE, fallback="/papers usage")
    note = f"I don't know `{escape_mrkdwn(sub)[:40]}`. " if sub else ""
    return text_answer(note + USAGE, fallback="/papers usage")


def _terms(text: str) -> list[str]:
    return [t.strip()[:MAX_TERM] for t in text.split(",") if t.strip()]


class PapersCommand:
    """Answers ``/papers`` subcommands for one person in one channel."""

    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        now: Callable[[], datetime],
        lookup_timezone: Callable[[str], str | None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.now = now
        self.lookup_timezone = lookup_timezone

    def answer(self, sub: str, rest: str, *, user_id: str, channel_id: str) -> dict[str, Any]:
        handler = getattr(self, f"_{sub}", None) if sub in SUBCOMMANDS - {"help"} else None
        if handler is None:
            return usage_answer(sub)
        result: dict[str, Any] = handler(rest, user_id=user_id, channel_id=channel_id)
        return result

    # -- reading -----------------------------------------------------------------------------
    def search_page(self, query: str, *, offset: int = 0) -> dict[str, Any]:
        page = search_papers(self.store, query, limit=PAGE, offset=offset)
        # clipped before escaping: 16 terms of "&"s would escape past a section's 3,000
        shown = escape_mrkdwn(clip(" ".join(page.terms), MAX_SHOWN_QUERY))
        if not page.terms:
            return text_answer(
                "Give me some words to search for, e.g. `/papers search linear attention`."
            )
        if not page.papers:
            more = " more" if offset else ""
            return text_answer(f"No{more} papers match _{shown}_.")
        return render_answer(
            text=f"Papers matching {' '.join(page.terms)}",
            header=f"Papers matching _{shown}_ ({offset + 1}–{offset + len(page.papers)}):",
            papers=page.papers,
            more=more_button_value(query, offset + PAGE) if page.has_more else None,
            templates_dir=self.settings.templates_dir,
        )

    def _search(self, rest: str, **_: str) -> dict[str, Any]:
        return self.search_page(rest)

    def _today(self, rest: str, *, user_id: str, channel_id: str) -> dict[str, Any]:
        name = rest.split()[0] if rest.split() else ""
        if not name:
            # the channel's first subscription whose profile is still configured (one
            # removed from the config keeps its row until the channel unsubscribes)
            known = {p.name for p in self.settings.profiles}
            subscribed = load_channel_profiles(self.store, channel_id)
            if subscribed:
                name = next((n for n in subscribed if n in known), subscribed[0])
            elif (mine := load_personal_profile(self.store, user_id).digest_profile()) is not None:
                return self._top(mine, label="you", button_profile=PERSONAL)
            else:
                return text_answer(
                    "This channel is not subscribed to a profile: try `/papers today <profile>` "
                    "(see `/papers profiles`), or follow terms: `/papers follow <terms>`."
                )
        try:
            profile = self.settings.profile(name)
        except NotFoundError:
            return self._unknown_profile(name)
        return self._top(profile, label=f"*{escape_mrkdwn(profile.name)}*")

    def _top(
        self, profile: Profile, *, label: str, button_profile: str | None = None
    ) -> dict[str, Any]:
        ranked = rank_profile(self.store, profile, now=self.now(), settings=self.settings.ranking)
        chosen = pick(ranked, profile)[:PAGE]
        if not chosen:
            return text_answer(f"No papers match {label} right now.")
        return render_answer(
            text=f"Top papers for {'you' if button_profile == PERSONAL else profile.name}",
            header=f"Top papers for {label}:",
            papers=chosen,
            profile=button_profile or profile.name,
            templates_dir=self.settings.templates_dir,
        )

    def _like(self, rest: str, **_: str) -> dict[str, Any]:
        ident = rest.split()[0] if rest.split() else ""
        if not ident:
            return text_answer(
                "Which paper? `/papers like <paper id>`, e.g. `/papers like 2401.01234`."
            )
        try:
            seed = self.store.get_paper(ident)
        except NotFoundError:
            return text_answer(f"I don't know the paper `{escape_mrkdwn(ident)[:80]}`.")
        # a like-only profile; the description carries the seed's words for the lexical ranker
        similar = Profile(
            name="similar", like=[seed.id], description=f"{seed.title} {seed.abstract}"[:4000]
        )
        ranked = [
            s
            for s in rank_profile(
                self.store, similar, now=self.now(), settings=self.settings.ranking, limit=PAGE + 1
            )
            if s.paper.id != seed.id and s.score > 0
        ][:PAGE]
        title = escape_mrkdwn(seed.title)
        if not ranked:
            return text_answer(f"No papers like _{title}_ yet.")
        return render_answer(
            text=f"Papers like {seed.title}",
            header=f"Papers like _{title}_:",
            papers=ranked,
            templates_dir=self.settings.templates_dir,
        )

    def _profiles(self, _rest: str, *, channel_id: str, **_: str) -> dict[str, Any]:
        subscribed = set(load_channel_profiles(self.store, channel_id))
        lines = ["*Profiles*"]
        for profile in self.settings.profiles:
            mark = " ✅ _this channel_" if profile.name in subscribed else ""
            about = escape_mrkdwn(" ".join(profile.description.split())[:150])
            lines.append(f"• `{escape_mrkdwn(profile.name)}`{mark} — {about}")
        if not self.settings.profiles:
            lines.append("_none configured_")
        gone = subscribed - {p.name for p in self.settings.profiles}
        for name in sorted(gone):
            lines.append(f"• `{escape_mrkdwn(name)}` ✅ _this channel, no longer configured_")
        return text_answer("\n".join(lines), fallback="Profiles")

    # -- channel subscriptions -----------------------------------------------------------------
    def _subscribe(self, rest: str, *, user_id: str, channel_id: str) -> dict[str, Any]:
        name = rest.split()[0] if rest.split() else ""
        if not name:
            return text_answer(
                "Which profile? `/papers subscribe <profile>` (see `/papers profiles`)."
            )
        try:
            profile = self.settings.profile(name)
        except NotFoundError:
            return self._unknown_profile(name)
        added = record_subscription(
            self.store, channel_id=channel_id, profile=profile.name, user_id=user_id, now=self.now()
        )
        label = escape_mrkdwn(profile.name)
        if not added:
            return text_answer(f"This channel already gets *{label}*.")
        return text_answer(f"This channel will get the *{label}* digest.")

    def _unsubscribe(self, rest: str, *, channel_id: str, **_: str) -> dict[str, Any]:
        name = rest.split()[0] if rest.split() else None
        removed = delete_subscriptions(self.store, channel_id=channel_id, profile=name)
        if name is None:
            return text_answer(f"Unsubscribed this channel from {removed} profile(s).")
        label = escape_mrkdwn(name)
        if not removed:
            return text_answer(f"This channel was not subscribed to *{label}*.")
        return text_answer(f"This channel will no longer get *{label}*.")

    # -- personal profile ----------------------------------------------------------------------
    def _follow(self, rest: str, *, user_id: str, **_: str) -> dict[str, Any]:
        wanted = _terms(rest)
        if not wanted:
            return text_answer("Follow what? `/papers follow linear attention, mamba`.")
        mine = load_personal_profile(self.store, user_id)
        known = {t.lower() for t in mine.terms}
        added = []
        for term in wanted:  # "Mamba, mamba": one term, as against those already followed
            if term.lower() not in known:
                known.add(term.lower())
                added.append(term)
        terms = (*mine.terms, *added)
        if len(terms) > MAX_FOLLOWED:
            return text_answer(f"You can follow at most {MAX_FOLLOWED} terms; unfollow some first.")
        self._save(mine, terms=terms)
        return self._me("", user_id=user_id)

    def _unfollow(self, rest: str, *, user_id: str, **_: str) -> dict[str, Any]:
        drop = {t.lower() for t in _terms(rest)}
        if not drop:
            return text_answer("Unfollow what? `/papers unfollow mamba`.")
        mine = load_personal_profile(self.store, user_id)
        self._save(mine, terms=tuple(t for t in mine.terms if t.lower() not in drop))
        return self._me("", user_id=user_id)

    def _time(self, rest: str, *, user_id: str, **_: str) -> dict[str, Any]:
        match = _TIME.match(rest.strip())
        if not match:
            return text_answer("Give a time as HH:MM, e.g. `/papers time 08:30`.")
        at = f"{int(match.group(1)):02d}:{match.group(2)}"
        zone = self.lookup_timezone(user_id)
        mine = load_personal_profile(self.store, user_id)
        self._save(mine, delivery_time=at, timezone=zone or mine.timezone or DEFAULT_TIMEZONE)
        answer = self._me("", user_id=user_id)
        if zone is None:
            answer["blocks"].append(
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": "I could not read your Slack timezone."}
                    ],
                }
            )
        return answer

    def _me(self, _rest: str, *, user_id: str, **_: str) -> dict[str, Any]:
        mine = load_personal_profile(self.store, user_id)
        if not mine.terms:
            follows = "You follow nothing yet: `/papers follow <terms>`."
        else:
            follows = "You follow: " + ", ".join(f"`{escape_mrkdwn(t)}`" for t in mine.terms)
        when = (
            f"Your digest comes by direct message at *{escape_mrkdwn(mine.delivery_time)}* "
            f"({escape_mrkdwn(mine.timezone)}); change it with `/papers time HH:MM`."
        )
        return text_answer(f"{follows}\n{when}", fallback="Your digestbot profile")

    def _save(self, mine: PersonalProfile, **changes: Any) -> None:
        values = {
            "terms": mine.terms,
            "delivery_time": mine.delivery_time,
            "timezone": mine.timezone,
            **changes,
        }
        upsert_personal_profile(
            self.store, PersonalProfile(user_id=mine.user_id, **values), now=self.now()
        )

    def _unknown_profile(self, name: str) -> dict[str, Any]:
        known = ", ".join(f"`{escape_mrkdwn(p.name)}`" for p in self.settings.profiles) or "none"
        return text_answer(
            f"I don't know the profile `{escape_mrkdwn(name)[:80]}`. Known: {known}."
        )
