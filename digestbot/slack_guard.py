"""Refuse every HTTP request that Slack did not sign, or signed for someone else's replay.

Slack signs each request: ``X-Slack-Signature: v0=hex(HMAC-SHA256(secret,
"v0:{X-Slack-Request-Timestamp}:{raw body}"))``. ``SlackRequestGuard`` is a Bolt
middleware placed before authorisation (``App(before_authorize=...)``), so a
request with a missing or wrong signature, a timestamp more than five minutes
from the injected clock, or a signature already seen, gets 401 and runs nothing
(no listener, no ``auth.test``). Socket Mode requests (authenticated by the
app-level token) are let through.

The replay memory is in this process only; it covers the whole five-minute
window in which a captured request would otherwise verify.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import Clock, SignatureVerifier

log = logging.getLogger(__name__)

MAX_SKEW_SECONDS = 300  # Slack's documented window
MAX_REMEMBERED = 200_000  # bound on the replay memory (about 40 MB at worst)


class _InjectedClock(Clock):
    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock()


def build_signature_verifier(
    signing_secret: str, *, clock: Callable[[], float]
) -> SignatureVerifier:
    """slack_sdk's verifier (constant-time compare, 5-minute window) on our clock."""
    return SignatureVerifier(signing_secret, clock=_InjectedClock(clock))


class ReplayMemory:
    """Signatures seen in the last ``MAX_SKEW_SECONDS`` (thread-safe)."""

    def __init__(self, *, window: float = MAX_SKEW_SECONDS, limit: int = MAX_REMEMBERED) -> None:
        self._window = window
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def is_replay(self, signature: str, *, timestamp: int, now: float) -> bool:
        """Remember ``signature``; ``True`` if it was already seen (or memory is full)."""
        with self._lock:
            horizon = now - 2 * self._window
            while self._seen:
                oldest_sig, oldest_ts = next(iter(self._seen.items()))
                if oldest_ts >= horizon and len(self._seen) < self._limit:
                    break
                if oldest_ts >= horizon:
                    # full of fresh entries: refuse rather than forget (a flood, not Slack)
                    return True
                del self._seen[oldest_sig]
            if signature in self._seen:
                return True
            self._seen[signature] = float(timestamp)
            return False


class SlackRequestGuard(Middleware):
    def __init__(self, signing_secret: str, *, clock: Callable[[], float]) -> None:
        self._verifier = build_signature_verifier(signing_secret, clock=clock)
        self._clock = clock
        self._replays = ReplayMemory()

    def process(
        self,
        *,
        req: BoltRequest,
        resp: BoltResponse,
        next: Callable[[], BoltResponse],  # Bolt passes it by this name
    ) -> BoltResponse:
        if req.mode == "socket_mode":
            return next()
        reason = self.refusal(req.raw_body, req.headers)
        if reason is not None:
            log.warning("refused a Slack request: %s", reason)
            return BoltResponse(status=401, body={"error": "invalid request"})
        return next()

    def refusal(self, body: str, headers: dict[str, Any]) -> str | None:
        """Why a request must be refused, or ``None`` if it is genuine and fresh."""
        timestamp = _header(headers, "x-slack-request-timestamp")
        signature = _header(headers, "x-slack-signature")
        if not timestamp or not signature:
            return "no signature"
        if not timestamp.isascii() or not timestamp.isdigit():
            return "malformed timestamp"
        now = self._clock()
        if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
            return "stale timestamp"
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return "bad signature"
        if self._replays.is_replay(signature, timestamp=int(timestamp), now=now):
            return "replayed request"
        return None


def _header(headers: dict[str, Any], name: str) -> str:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else ""
    return str(value or "")
