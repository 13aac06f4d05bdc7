"""What ``send_due`` reports, the digest's date and id, and the crash-test hook."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from digestbot.config import Profile

# rejected: Slack or the mail server refused the digest for its content, even as plain text
# (settled, not retried: the next day's digest goes out); it does not make ``SendReport.ok``
# false
OutcomeStatus = Literal["sent", "already-sent", "nothing-new", "failed", "rejected", "dry-run"]
PAUSE_ENV = "DIGESTBOT_TEST_PAUSE"  # "<point>:<dir>": the crash tests stop the sender there


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    profile: str
    destination: str
    status: OutcomeStatus
    papers: int = 0
    error: str = ""
    digest_id: str = ""
    detail: str = ""
    preview: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "destination": self.destination,
            "status": self.status,
            "papers": self.papers,
            "error": self.error or None,
            "digest_id": self.digest_id or None,
            "detail": self.detail or None,
        }


@dataclass
class SendReport:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.status != "failed" for o in self.outcomes)

    def count(self, status: OutcomeStatus) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def digest_date_for(profile: Profile, now: datetime) -> date:
    return now.astimezone(ZoneInfo(profile.schedule.timezone)).date()


def digest_id_for(profile: str, destination: str, digest_date: date) -> str:
    key = f"{profile}\x00{destination}\x00{digest_date.isoformat()}"
    return "d" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:23]


def form_note(destination: str, progress: dict[str, Any]) -> str:
    """How a sent digest went out when not in its full form, from its ledger progress
    (``{"form": "plain", "refused": why}``, or ``"form": "compact"`` for an email sent as
    compact HTML, without abstracts; an email cut to fit the mail server's size limit
    also has ``kept`` and ``left_out``: paper counts); "" when in full."""
    form = progress.get("form")
    if form not in ("plain", "compact"):
        return ""
    refused = progress.get("refused")
    if not destination.startswith("email:"):
        return f"sent as plain text: Slack refused the formatted digest ({refused})"
    if form == "compact":
        return (
            "sent as compact HTML (no abstracts): the mail server refuses the full message "
            f"({refused})"
        )
    how = "sent as plain text"
    left_out = int(progress.get("left_out") or 0)
    if left_out:
        kept = int(progress.get("kept") or 0)
        how += (
            f" listing {kept} of {kept + left_out} papers"
            f" (the other {left_out} are offered again to the next digests)"
        )
    return f"{how}: the mail server refuses the full message ({refused})"


def pause_point(point: str) -> None:
    """Test hook: with ``DIGESTBOT_TEST_PAUSE=<point>:<dir>``, announce and wait for release."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    wanted, _, directory = spec.partition(":")
    if wanted != point:
        return
    folder = Path(directory)
    (folder / f"{point}.reached").touch()
    while not (folder / "release").exists():
        time.sleep(0.01)
