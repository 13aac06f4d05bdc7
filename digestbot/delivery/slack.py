"""Slack: post a digest with ``chat.postMessage`` (bot token) or an incoming webhook.

The client is injected (``slack_sdk.WebClient`` / ``WebhookClient``). A 429 waits
for ``Retry-After`` (slack_sdk's ``RateLimitErrorRetryHandler``); posts to one
channel are spaced at least ``min_interval`` (Slack allows about one a second);
permanent errors (``channel_not_found``, ``not_in_channel``, ``invalid_auth``,
``account_inactive``…) fail at once with that reason; transient ones (5xx, time-outs,
``ratelimited`` after the handler gave up) are retried a bounded number of times.

A message refused for its content (``CONTENT_ERRORS``: ``invalid_blocks``,
``msg_too_long``…) is posted at once again as plain text (``fallback``:
the same papers, no blocks, the same metadata); ``progress["form"]`` says ``plain``
from then on. If Slack refuses that too, ``ContentRefusedError``: retrying would
only be refused again.

Every message carries the digest id in its ``metadata``. Before a retry that may
follow a post Slack already accepted (an earlier attempt died, a time-out, a 5xx), the
channel's recent history (and the digest's thread) is searched for that id, so
the post is not made twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypedDict, TypeVar, Unpack

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from digestbot.delivery.formats import SlackMessage
from digestbot.errors import ContentRefusedError, DeliveryError

log = logging.getLogger(__name__)

EVENT_TYPE = "digestbot_digest"
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "not_authed",
        "is_archived",
        "missing_scope",
        "restricted_action",
        "no_service",
        "action_prohibited",
        "channel_is_archived",
        "invalid_token",
    }
)
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# refused for what the message holds, not where it goes: posting it again as it is would
# be refused again (any other refusal is a failure, retried on the next run)
CONTENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "too_many_attachments",
        "invalid_attachments",
        "attachment_payload_limit_exceeded",
        "invalid_arguments",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_json",
        "json_not_object",
        "invalid_metadata",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "markdown_text_conflict",
        "no_text",
    }
)
MAYBE_POSTED_ERRORS = frozenset({"internal_error", "fatal_error"})
HISTORY_LIMIT = 200  # messages per page of conversations.history / .replies
HISTORY_PAGES = 25  # pages read at most when looking for a digest (5,000 messages)
HISTORY_MARGIN = 600  # seconds before the digest was made that the look starts (clock skew)

OnPart = Callable[[int, dict[str, Any]], None]


def ensure_rate_limit_handler(handlers: list[Any], *, retries: int) -> None:
    """Make a slack_sdk client honour 429 Retry-After (added once), and drop its
    connection-error handler: re-sending a post blindly after a reset can post it twice;
    the deliverer retries those itself, after looking for the post in the channel."""
    handlers[:] = [h for h in handlers if not isinstance(h, ConnectionErrorRetryHandler)]
    if not any(isinstance(h, RateLimitErrorRetryHandler) for h in handlers):
        handlers.append(RateLimitErrorRetryHandler(max_retry_count=retries))


class _Pacer:
    """At most one post per ``min_interval`` seconds per channel."""

    def __init__(
        self, min_interval: float, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> None:
        self.min_interval = min_interval
        self.sleep = sleep
        self.clock = clock
        self.last: dict[str, float] = {}

    def wait(self, channel: str) -> None:
        last = self.last.get(channel)
        if last is not None:
            delay = self.min_interval - (self.clock() - last)
            if delay > 0:
                self.sleep(delay)

    def done(self, channel: str) -> None:
        self.last[channel] = self.clock()


def _metadata(digest_id: str, index: int, total: int) -> dict[str, Any]:
    return {
        "event_type": EVENT_TYPE,
        "event_payload": {"digest_id": digest_id, "part": index, "parts": total},
    }


class Pacing(TypedDict, total=False):
    """How a deliverer paces and retries (defaults: 1 s a message, 3 attempts, 2 s backoff)."""

    min_interval: float
    max_attempts: int
    backoff: float
    rate_limit_retries: int
    sleep: Callable[[float], None]
    clock: Callable[[], float]


class _PacedSender:
    """The pacing and retry set-up shared by the bot-token and webhook deliverers."""

    def __init__(self, retry_handlers: list[Any], **pacing: Unpack[Pacing]) -> None:
        ensure_rate_limit_handler(retry_handlers, retries=pacing.get("rate_limit_retries", 3))
        self.max_attempts = pacing.get("max_attempts", 3)
        self.backoff = pacing.get("backoff", 2.0)
        self.sleep = pacing.get("sleep", time.sleep)
        self.pacer = _Pacer(
            pacing.get("min_interval", 1.0), self.sleep, pacing.get("clock", time.monotonic)
        )


class SlackDeliverer(_PacedSender):
    """Posts digests to channels through a bot-token ``WebClient``."""

    def __init__(self, client: WebClient, **pacing: Unpack[Pacing]) -> None:
        super().__init__(client.retry_handlers, **pacing)
        self.client = client
        self._dm: dict[str, str] = {}  # user id -> the id of the bot's DM with that person

    def check(self) -> str:
        """``auth.test``: the bot's name and team, or a DeliveryError saying why not."""
        try:
            response = self.client.auth_test()
        except (SlackClientError, OSError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else str(exc)
            raise DeliveryError(
                f"cannot authenticate: {reason}", destination="slack", reason=str(reason)
            ) from exc
        return f"{response.get('user')} on {response.get('team')}"

    def post_digest(
        self,
        channel: str,
        messages: Sequence[SlackMessage],
        *,
        digest_id: str,
        progress: dict[str, Any],
        maybe_posted: bool,
        on_part: OnPart,
        made_at: datetime | None = None,
        fallback: Sequence[SlackMessage] | None = None,
    ) -> str:
        """Post every part not yet posted; the first is the parent, the rest thread replies.

        ``progress`` (``channel``, ``thread_ts``, ``parts``: index -> ts, ``form``) is what
        earlier attempts recorded; ``on_part`` is called after each accepted post;
        ``made_at`` (when the digest was made) bounds how far back the channel is read to
        find parts an earlier attempt posted; ``fallback`` (one plain message per message)
        is posted instead of a part Slack refuses for its content, and for every part after
        it. Returns the parent message's ts.
        """
        label = f"slack:{channel}"
        parts: dict[str, str] = dict(progress.get("parts") or {})
        state: dict[str, Any] = {**progress, "parts": parts}
        if maybe_posted:
            found = self.find_posted(
                state.get("channel") or channel,
                digest_id,
                thread_ts=parts.get("0"),
                total=len(messages),
                made_at=made_at,
            )
            for index, ts in sorted(found.items()):
                if str(index) not in parts and index < len(messages):
                    log.info("%s: part %s of %s was already posted", label, index, digest_id)
                    parts[str(index)] = ts
                    state["thread_ts"] = parts.get("0")
                    on_part(index, state)
        for index, message in enumerate(messages):
            if str(index) in parts:
                continue

            def post(message: SlackMessage, index: int = index) -> tuple[str, str]:
                return self._post(
                    channel,
                    message,
                    metadata=_metadata(digest_id, index, len(messages)),
                    thread_ts=parts.get("0"),
                    label=label,
                    lookup=state.get("channel") or channel,
                    made_at=made_at,
                )

            plain = fallback[index] if fallback is not None else None
            ts, channel_id = _post_or_fallback(
                post, message, plain, state, label=label, what=f"part {index} of {digest_id}"
            )
            parts[str(index)] = ts
            state["channel"] = channel_id
            state["thread_ts"] = parts["0"]
            on_part(index, state)
        return parts["0"]

    def _post(
        self,
        channel: str,
        message: SlackMessage,
        *,
        metadata: dict[str, Any],
        thread_ts: str | None,
        label: str,
        lookup: str,
        made_at: datetime | None = None,
    ) -> tuple[str, str]:
        """Post one message; ``lookup`` is where to look for it after an ambiguous failure
        (the channel's id once Slack has given it: history is read by id only)."""
        payload = metadata["event_payload"]
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.wait(channel)
            ambiguous = False
            try:
                response = self.client.chat_postMessage(
                    channel=channel,
                    text=message.text,
                    blocks=list(message.blocks) or None,
                    thread_ts=thread_ts,
                    metadata=metadata,
                    unfurl_links=False,
                    unfurl_media=False,
                )
                return str(response["ts"]), str(response.get("channel") or channel)
            except SlackApiError as exc:
                error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
                transient = error in TRANSIENT_ERRORS or exc.response.status_code >= 500
                if error in CONTENT_ERRORS:
                    raise ContentRefusedError(
                        f"Slack refused the message: {error}", destination=label, reason=error
                    ) from exc
                if not transient:
                    raise DeliveryError(
                        f"Slack refused the message: {error}",
                        destination=label,
                        reason=error,
                        permanent=error in PERMANENT_ERRORS,
                    ) from exc
                last = error
                # a 5xx (perhaps a proxy's, after Slack took the post) or an error Slack
                # says may follow a partial success: look before posting again
                ambiguous = exc.response.status_code >= 500 or error in MAYBE_POSTED_ERRORS
            except (SlackClientError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                ambiguous = True
            finally:
                self.pacer.done(channel)
            log.warning("%s: attempt %s failed (%s)", label, attempt, last)
            if attempt < self.max_attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            if ambiguous:
                found = self.find_posted(
                    lookup,
                    payload["digest_id"],
                    thread_ts=thread_ts,
                    total=payload["parts"],
                    made_at=made_at,
                )
                if payload["part"] in found:
                    return found[payload["part"]], lookup
        raise DeliveryError(
            f"Slack did not accept the message after {self.max_attempts} attempts: {last}",
            destination=label,
            reason=last,
        )

    def find_posted(
        self,
        channel: str,
        digest_id: str,
        *,
        thread_ts: str | None,
        total: int,
        made_at: datetime | None = None,
    ) -> dict[int, str]:
        """Parts of this digest already in the channel (index -> ts), from its metadata.

        The channel's history is read page by page, back to ``made_at`` (less a margin for
        clock skew) when given, until the parent message is found: a busy channel may
        hold far more than one page since a crashed run posted it hours ago."""
        found: dict[int, str] = {}
        oldest = (
            {"oldest": f"{made_at.timestamp() - HISTORY_MARGIN:.6f}"} if made_at is not None else {}
        )
        try:
            channel = self._readable(channel)
            if thread_ts is None:
                pages = HISTORY_PAGES if made_at is not None else 1
                history = self._pages(self.client.conversations_history, channel, pages, **oldest)
                for page in history:
                    found.update(_matching(page, digest_id))
                    if 0 in found:
                        break
            parent = thread_ts or found.get(0)
            if parent is not None and total > 1:
                thread = self._pages(
                    self.client.conversations_replies, channel, HISTORY_PAGES, ts=parent
                )
                for page in thread:
                    found.update(_matching(page, digest_id))
        except (SlackClientError, OSError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            log.warning(
                "slack:%s: cannot read the history to check for digest %s (%s); "
                "posting again may duplicate it",
                channel,
                digest_id,
                reason,
            )
        return found

    @staticmethod
    def _pages(
        method: Callable[..., Any], channel: str, pages: int, **params: str
    ) -> Iterator[list[Any]]:
        """The messages of a history or thread read, page by page (``pages`` at most)."""
        cursor = ""
        for _ in range(pages):
            extra = {"cursor": cursor} if cursor else {}
            response = method(
                channel=channel, include_all_metadata=True, limit=HISTORY_LIMIT, **params, **extra
            )
            yield list(response.get("messages") or [])
            cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return

    def _readable(self, channel: str) -> str:
        """The id ``conversations.history`` reads: a personal digest is posted to a user id
        (Slack puts it in the DM), whose history is that DM's (``conversations.open``)."""
        if not channel.startswith(("U", "W")):
            return channel
        if channel not in self._dm:
            response = self.client.conversations_open(users=channel)
            self._dm[channel] = str(response["channel"]["id"])
        return self._dm[channel]


_T = TypeVar("_T")


def _post_or_fallback(
    post: Callable[[SlackMessage], _T],
    message: SlackMessage,
    plain: SlackMessage | None,
    state: dict[str, Any],
    *,
    label: str,
    what: str,
) -> _T:
    """Post ``message``; refused for its content, post ``plain`` instead (and note it in
    ``state``: every later part goes plain). Refused for content even so (or without a
    ``plain``), ``ContentRefusedError``."""
    if plain is not None and state.get("form") == "plain":
        return post(plain)
    try:
        return post(message)
    except ContentRefusedError as exc:
        if plain is None:
            raise
        log.warning(
            "%s: Slack refused %s for its content (%s); posting it as plain text",
            label,
            what,
            exc.reason,
        )
        state.update(form="plain", refused=exc.reason)
        try:
            return post(plain)
        except ContentRefusedError as again:
            raise ContentRefusedError(
                f"Slack refused the digest formatted ({exc.reason}) "
                f"and as plain text ({again.reason})",
                destination=label,
                reason=f"{exc.reason}; plain text: {again.reason}",
            ) from again


def _matching(messages: Sequence[Any], digest_id: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for message in messages:
        meta = message.get("metadata") if isinstance(message, dict) else None
        if not isinstance(meta, dict) or meta.get("event_type") != EVENT_TYPE:
            continue
        payload = meta.get("event_payload") or {}
        if payload.get("digest_id") == digest_id and isinstance(payload.get("part"), int):
            found[payload["part"]] = str(message.get("ts"))
    return found


class WebhookDeliverer(_PacedSender):
    """Posts digests to one incoming webhook (no threads: parts are consecutive messages).

    A webhook cannot be read back, so a crash between Slack's answer and the ledger
    may post a part twice on the retry (at-least-once).
    """

    def __init__(self, client: WebhookClient, *, label: str, **pacing: Unpack[Pacing]) -> None:
        super().__init__(client.retry_handlers, **pacing)
        self.client = client
        self.label = label

    def post_digest(
        self,
        messages: Sequence[SlackMessage],
        *,
        digest_id: str,
        progress: dict[str, Any],
        on_part: OnPart,
        fallback: Sequence[SlackMessage] | None = None,
    ) -> str:
        """Post every part not yet posted; ``fallback`` as for ``SlackDeliverer``."""
        parts: dict[str, str] = dict(progress.get("parts") or {})
        state: dict[str, Any] = {**progress, "parts": parts}
        for index, message in enumerate(messages):
            if str(index) in parts:
                continue
            metadata = _metadata(digest_id, index, len(messages))

            def post(message: SlackMessage, metadata: dict[str, Any] = metadata) -> None:
                self._post(message, metadata)

            plain = fallback[index] if fallback is not None else None
            _post_or_fallback(
                post, message, plain, state, label=self.label, what=f"part {index} of {digest_id}"
            )
            parts[str(index)] = "webhook"
            on_part(index, state)
        return digest_id

    def _post(self, message: SlackMessage, metadata: dict[str, Any]) -> None:
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            self.pacer.wait("webhook")
            try:
                response = self.client.send(
                    text=message.text,
                    blocks=list(message.blocks) or None,  # plain text: no "blocks" key at all
                    metadata=metadata,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except (SlackClientError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    return
                last = (response.body or "").strip()[:200] or f"HTTP {response.status_code}"
                if response.status_code == 400 and last in (*CONTENT_ERRORS, "invalid_payload"):
                    raise ContentRefusedError(
                        f"Slack refused the message: {last}", destination=self.label, reason=last
                    )
                if response.status_code < 500 and response.status_code != 429:
                    raise DeliveryError(
                        f"Slack refused the message: {last}",
                        destination=self.label,
                        reason=last,
                        permanent=True,
                    )
            finally:
                self.pacer.done("webhook")
            log.warning("%s: attempt %s failed (%s)", self.label, attempt, last)
            if attempt < self.max_attempts:
                self.sleep(self.backoff * 2 ** (attempt - 1))
        raise DeliveryError(
            f"Slack did not accept the message after {self.max_attempts} attempts: {last}",
            destination=self.label,
            reason=last,
        )
