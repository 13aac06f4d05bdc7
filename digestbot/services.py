"""The services the daemon is given: what it needs of delivery and feeds, and a clock.

Structural types only (``Protocol``): the delivery service's ``send_due`` and the
feeds' ``poll_feeds`` satisfy them without importing anything from here, and
tests pass stand-ins of the same shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

# the ``detail`` of a ``rejected`` outcome that only reports today's digest rejected by an
# earlier run (settled then, alerted then): not a new rejection, not a failed run
REJECTED_EARLIER = "today's digest was refused for its content; the next one goes out tomorrow"


def is_new_rejection(outcome: SendOutcomeLike) -> bool:
    """Whether the outcome is a digest rejected by this run (not one rejected earlier)."""
    return outcome.status == "rejected" and getattr(outcome, "detail", "") != REJECTED_EARLIER


def is_held_by_another_run(outcome: SendOutcomeLike) -> bool:
    """Not sent by this call because another run holds the digest (its lease: it may have
    died mid-send) or recorded it first: the delivery service's ``another run …`` details."""
    detail = str(getattr(outcome, "detail", "") or "")
    return outcome.status == "already-sent" and detail.startswith("another run")


class SendOutcomeLike(Protocol):
    @property
    def profile(self) -> str: ...
    @property
    def destination(self) -> str: ...
    @property
    def status(self) -> str: ...  # sent | already-sent | nothing-new | failed | rejected | dry-run
    @property
    def error(self) -> str | None: ...
    @property
    def digest_id(self) -> Any: ...
    @property
    def papers(self) -> Any: ...


class SendReportLike(Protocol):
    @property
    def outcomes(self) -> Sequence[SendOutcomeLike]: ...
    @property
    def ok(self) -> bool: ...


class FeedOutcomeLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def error(self) -> str | None: ...


class PollReportLike(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def feeds(self) -> Sequence[FeedOutcomeLike]: ...


SendFn = Callable[..., SendReportLike]  # send_due(settings, store, *, now, as_of, profiles=[name])
PollFn = Callable[..., PollReportLike]  # poll_feeds(settings, store, *, now, only=name)
Clock = Callable[[], datetime]
