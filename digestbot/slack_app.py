"""The Bolt app: ``/papers`` and the buttons on digests and answers.

Every listener acknowledges at once, in the request thread
(``process_before_response=True``), then hands the work to a small thread pool
that answers through ``response_url`` or the Web API. (The pool is ours rather
than Bolt's lazy listeners: those deep-copy every request, which costs more CPU
than the acknowledgement itself when many commands arrive together.)
HTTP requests are verified by ``SlackRequestGuard`` before anything runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import Ack, App, Respond
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from digestbot.config import Settings
from digestbot.errors import ConfigError, DigestError
from digestbot.render import escape_mrkdwn
from digestbot.slack_answers import (
    ACTION_DOWN,
    ACTION_MORE,
    ACTION_SHARE,
    ACTION_UP,
    AnswerMemory,
    has_vote_note,
    mark_vote,
    parse_more_button,
    parse_paper_button,
    render_answer,
    text_answer,
)
from digestbot.slack_commands import PapersCommand, is_answered_at_once, split_command, usage_answer
from digestbot.slack_guard import SlackRequestGuard
from digestbot.store import SqlStore
from digestbot.store.feedback import record_feedback

log = logging.getLogger(__name__)

WORKERS = 4  # the work (searches, ranking) uses the cores; acks must still get CPU


def _utc_now() -> datetime:
    return datetime.now(UTC)


def build_slack_app(
    settings: Settings,
    store: SqlStore,
    *,
    client: WebClient,
    now: Callable[[], datetime] = _utc_now,
    socket_mode: bool = False,
) -> App:
    """The Bolt app over ``store``; Slack calls go through the injected ``client``."""
    secret = settings.slack.signing_secret
    if not socket_mode and secret is None:
        raise ConfigError(
            "needed to verify requests from Slack (signing_secret: ${SLACK_SIGNING_SECRET} "
            "under slack: in the config, or the variable DIGESTBOT_SLACK__SIGNING_SECRET)",
            path=settings.source,
            key="slack.signing_secret",
        )
    guard = (
        SlackRequestGuard(secret.get_secret_value(), clock=lambda: now().timestamp())
        if secret is not None
        else None
    )
    app = App(
        client=_without_token(client),
        signing_secret=secret.get_secret_value() if secret is not None else "unused",
        request_verification_enabled=False,  # SlackRequestGuard does it, on our clock
        before_authorize=guard,
        authorize=_bot_token_authorize(client.token),
        process_before_response=True,
    )
    handlers = _Handlers(settings, store, client=client, now=now)
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="digestbot-slack")

    def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        if handlers.ack_command(ack, command):
            pool.submit(handlers.run_command, command, respond)

    def on_click(ack: Ack, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        ack()
        work = {
            ACTION_UP: handlers.vote,
            ACTION_DOWN: handlers.vote,
            ACTION_SHARE: handlers.share,
            ACTION_MORE: handlers.more,
        }[action["action_id"]]
        pool.submit(work, body, action, respond)

    app.command("/papers")(on_command)
    for action_id in (ACTION_UP, ACTION_DOWN, ACTION_SHARE, ACTION_MORE):
        app.action(action_id)(on_click)
    app.error(_log_error)
    return app


def _bot_token_authorize(token: str | None) -> Callable[..., AuthorizeResult]:
    """Bolt's authorization from the configured bot token, with no call to Slack. Bolt's own
    (one workspace) calls ``auth.test`` on the first request before the acknowledgement: a
    Slack API slow past 3 s timed that ``/papers`` out, and one failing (a 503, a rate limit)
    answered "your installation … is no longer available. Please reinstall this app"."""

    def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token
        )

    return authorize


def _without_token(client: WebClient) -> WebClient:
    """The client's settings without its token, for Bolt (given ``authorize``, it warns of a
    token it skips); our handlers call Slack through ``client`` itself."""
    return WebClient(
        token=None,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        retry_handlers=client.retry_handlers,
    )


def _log_error(error: Exception, body: dict[str, Any]) -> None:
    log.error("Slack listener failed (%s) on a %s request", type(error).__name__, body.get("type"))


def _safely(respond: Respond, work: Callable[[], None]) -> None:
    """Run work after the ack; a failure becomes a polite ephemeral line, never silence."""
    try:
        work()
    except DigestError as exc:
        _respond_quietly(respond, text_answer(f"Sorry: {escape_mrkdwn(exc)}"))
    except (SlackClientError, OSError) as exc:  # OSError: response_url unreachable
        log.warning("Slack (Web API or response_url) failed: %s", type(exc).__name__)
        _respond_quietly(respond, text_answer("Sorry: Slack refused my answer; try again."))
    except Exception:
        log.exception("/papers failed")
        _respond_quietly(respond, text_answer("Sorry: something went wrong (logged)."))


def _respond_quietly(respond: Respond, payload: dict[str, Any]) -> None:
    try:
        respond(**payload, response_type="ephemeral", replace_original=False)
    except (SlackClientError, OSError) as exc:
        log.warning("cannot answer through response_url: %s", type(exc).__name__)


class _Handlers:
    def __init__(
        self,
        settings: Settings,
        store: SqlStore,
        *,
        client: WebClient,
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.client = client
        self.now = now
        self.answers = AnswerMemory()
        self.papers = PapersCommand(settings, store, now=now, lookup_timezone=self.lookup_timezone)

    def lookup_timezone(self, user_id: str) -> str | None:
        """The person's Slack timezone (``users.info``), if Slack says and Python knows it."""
        try:
            reply = self.client.users_info(user=user_id)
        except SlackClientError as exc:
            log.warning("users.info failed: %s", type(exc).__name__)
            return None
        zone = (reply.get("user") or {}).get("tz")
        if not isinstance(zone, str):
            return None
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return None
        return zone

    # -- /papers -------------------------------------------------------------------------------
    def ack_command(self, ack: Ack, command: dict[str, Any]) -> bool:
        """Acknowledge; ``True`` if there is work left to do (usage is answered in the ack)."""
        sub, _rest = split_command(command.get("text") or "")
        if is_answered_at_once(sub):
            ack(**usage_answer(sub), response_type="ephemeral")
            return False
        ack()
        return True

    def run_command(self, command: dict[str, Any], respond: Respond) -> None:
        sub, rest = split_command(command.get("text") or "")

        def work() -> None:
            answer = self.papers.answer(
                sub, rest, user_id=command["user_id"], channel_id=command["channel_id"]
            )
            answer = self.answers.remember(answer)
            respond(**answer, response_type="ephemeral", replace_original=False)

        _safely(respond, work)

    # -- buttons -------------------------------------------------------------------------------
    def vote(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        _safely(respond, lambda: self._vote(body, action, respond))

    def _vote(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        button = parse_paper_button(str(action.get("value") or ""))
        if button is None:
            _respond_quietly(respond, text_answer("Sorry: that button is not one of mine."))
            return
        user_id = body["user"]["id"]
        value = 1 if action["action_id"] == ACTION_UP else -1
        if button.is_personal:
            kind, subject, whose = "user", user_id, "your own profile"
        else:
            kind, subject = "profile", button.profile
            whose = f"*{escape_mrkdwn(button.profile)}*"
        record_feedback(
            self.store,
            subject_kind=kind,  # type: ignore[arg-type]
            subject=subject,
            paper_id=button.paper,
            value=value,
            source="slack",
            now=self.now(),
        )
        verb = "👍 more like this" if value > 0 else "👎 less like this"
        note = f"{verb} for {whose} (<@{escape_mrkdwn(user_id)}>)"
        self._show_vote(body, action, value=value, note=note, respond=respond)

    def _show_vote(
        self,
        body: dict[str, Any],
        action: dict[str, Any],
        *,
        value: int,
        note: str,
        respond: Respond,
    ) -> None:
        message = body.get("message") or {}
        blocks = message.get("blocks")
        container = body.get("container") or {}
        block_id = str(action.get("block_id"))
        if not isinstance(blocks, list):  # ephemeral messages come without their blocks
            remembered = self.answers.recall(block_id)
            if remembered is None:  # an answer from before a restart: confirm on a new line
                respond(text=note, response_type="ephemeral", replace_original=False)
                return
            answer_id, old = remembered
            redrawn = mark_vote(old, block_id=block_id, value=value, note=note)
            self.answers.store(answer_id, redrawn)
            respond(text=note, blocks=redrawn, replace_original=True)
            return
        updated = mark_vote(blocks, block_id=block_id, value=value, note=note)
        if not has_vote_note(updated, block_id=block_id):  # a full message: tell the voter
            _respond_quietly(respond, text_answer(note, fallback=note))
        text = message.get("text") or "digestbot"
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        if container.get("is_ephemeral") or not channel or not message.get("ts"):
            respond(text=text, blocks=updated, replace_original=True)
            return
        try:
            self.client.chat_update(channel=channel, ts=message["ts"], text=text, blocks=updated)
        except SlackApiError as exc:  # e.g. a message posted by an incoming webhook
            log.info(
                "chat.update refused (%s); replacing through response_url",
                exc.response.get("error"),
            )
            respond(text=text, blocks=updated, replace_original=True)

    def share(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        _safely(respond, lambda: self._share(body, action, respond))

    def _share(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        button = parse_paper_button(str(action.get("value") or ""))
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
            "channel_id"
        )
        if button is None or not channel:
            _respond_quietly(respond, text_answer("Sorry: I cannot share that here."))
            return
        paper = self.store.get_paper(button.paper)
        user_id = body["user"]["id"]
        message = render_answer(
            text=paper.title,
            header=f"<@{escape_mrkdwn(user_id)}> shared:",
            papers=[paper],
            profile=button.profile,
            share=False,
            templates_dir=self.settings.templates_dir,
        )
        try:
            self.client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "error")
            hint = " Invite me first: `/invite @digestbot`." if error == "not_in_channel" else ""
            _respond_quietly(
                respond, text_answer(f"Slack refused to post here ({escape_mrkdwn(error)}).{hint}")
            )
            return
        respond(text=f"Shared to <#{escape_mrkdwn(channel)}>.", replace_original=False)

    def more(self, body: dict[str, Any], action: dict[str, Any], respond: Respond) -> None:
        del body

        def work() -> None:
            button = parse_more_button(str(action.get("value") or ""))
            if button is None:
                _respond_quietly(respond, text_answer("Sorry: that button is not one of mine."))
                return
            answer = self.answers.remember(self.papers.search_page(button.q, offset=button.offset))
            respond(**answer, response_type="ephemeral", replace_original=True)

        _safely(respond, work)
