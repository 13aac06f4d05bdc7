"""Alerts: tell a person when a digest did not arrive, and why.

Three events raise an alert (``alerts:`` in the config says where it goes):

* a delivery failed (after the deliverer's own bounded retries);
* Slack or the mail server refused a digest for its content even as plain text (it is
  not retried);
* a source failed ``alerts.source_failures`` times in a row;
* a scheduled digest was skipped for lack of papers and the profile says
  ``on_empty: notify``.

Each alert is given once: its key is claimed in the database (``alerts_sent``)
before the notifier is called, so neither a busy loop nor a restart repeats it.
The notifier is injected (``Notifier``): the log always, plus Slack and email
once the delivery adapters are wired in at the command-line edge.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from digestbot.errors import DigestError
from digestbot.redact import redact_urls
from digestbot.store import SqlStore
from digestbot.store.daemon import claim_alert, forget_alerts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str  # delivery-failed | digest-rejected | source-failing | digest-empty
    message: str
    profile: str | None = None
    destination: str | None = None
    digest_id: str | None = None
    source: str | None = None


class Notifier(Protocol):
    def notify(self, alert: Alert) -> None: ...


class LogNotifier:
    """Every alert is at least a WARNING line in the log."""

    def notify(self, alert: Alert) -> None:
        log.warning(
            "alert %s: %s",
            alert.kind,
            alert.message,
            extra={
                "event": f"alert.{alert.kind}",
                "profile": alert.profile,
                "destination": alert.destination,
                "digest_id": alert.digest_id,
                "source": alert.source,
            },
        )


class FanOutNotifier:
    """Tell every notifier; one that fails is logged and does not stop the others."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)

    def notify(self, alert: Alert) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(alert)
            except DigestError as exc:
                log.error(
                    "could not send the alert %s: %s",
                    alert.kind,
                    exc,
                    extra={"event": "alert.failed", "profile": alert.profile},
                )


class Alerter:
    """Decides whether an event is worth an alert, and gives each one once."""

    def __init__(self, store: SqlStore, notifier: Notifier, *, source_failures: int = 3) -> None:
        self.store = store
        self.notifier = notifier
        self.source_failures = source_failures

    def _give(self, alert: Alert, *, key: str, now: datetime) -> bool:
        if not claim_alert(self.store, kind=alert.kind, key=key, message=alert.message, now=now):
            return False
        self.notifier.notify(alert)
        return True

    def delivery_failed(
        self,
        *,
        profile: str,
        destination: str,
        digest_id: str | None,
        error: str | None,
        now: datetime,
    ) -> bool:
        message = (
            f"the digest for profile {profile} to {destination} failed: {error or 'unknown error'}"
            " (it stays pending and is retried on the next run)"
        )
        key = f"{profile}|{destination}|{digest_id or now.date().isoformat()}"
        alert = Alert(
            "delivery-failed", message, profile=profile, destination=destination,
            digest_id=digest_id,
        )  # fmt: skip
        return self._give(alert, key=key, now=now)

    def digest_rejected(
        self,
        *,
        profile: str,
        destination: str,
        digest_id: str | None,
        error: str | None,
        now: datetime,
    ) -> bool:
        if destination.startswith("email:"):
            message = (
                f"the mail server refused the digest for profile {profile} to {destination}, "
                f"in full and as plain text: {error or 'unknown error'}. It is not retried; its "
                "papers may go in the next digest, which goes out as usual. Check the server's "
                "message size limit and the templates (templates_dir)."
            )
        else:
            message = (
                f"Slack refused the digest for profile {profile} to {destination}, formatted "
                f"and as plain text: {error or 'unknown error'}. It is not retried; its papers "
                "may go in the next digest, which goes out as usual. Check the templates "
                "(templates_dir) and this channel's limits."
            )
        key = f"{profile}|{destination}|{digest_id or now.date().isoformat()}"
        alert = Alert(
            "digest-rejected", message, profile=profile, destination=destination,
            digest_id=digest_id,
        )  # fmt: skip
        return self._give(alert, key=key, now=now)

    def digest_empty(
        self, *, profile: str, destination: str, digest_date: str, now: datetime
    ) -> bool:
        message = (
            f"no new papers for profile {profile} on {digest_date}: "
            f"the scheduled digest to {destination} had nothing to send"
        )
        alert = Alert("digest-empty", message, profile=profile, destination=destination)
        return self._give(alert, key=f"{profile}|{destination}|{digest_date}", now=now)

    def source_result(
        self, source: str, *, failures: int, error: str | None, now: datetime
    ) -> bool:
        """After each run of a source: alert once when it reaches the failure threshold."""
        if failures == 0:
            forget_alerts(self.store, kind="source-failing", key_prefix=f"{source}|")
            return False
        if failures < self.source_failures:
            return False
        shown = None if error is None else redact_urls(error)  # a feed URL's credentials
        message = f"source {source} failed {failures} times in a row; last error: {shown}"
        alert = Alert("source-failing", message, source=source)
        return self._give(alert, key=f"{source}|streak", now=now)
