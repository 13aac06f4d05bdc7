"""Where alerts go beyond the log: a Slack channel and email addresses (``alerts:``).

The adapters for alerts: ``SlackApiError``/``smtplib`` errors are caught here and
re-raised as ``DeliveryError`` (which ``FanOutNotifier`` logs without stopping the
others). Email goes through delivery's ``build_smtp_factory``: one SMTP code path
(security, AUTH, time-out). Alert text carries untrusted values (paper-free, but
error messages from servers and file names), so it is escaped for Slack mrkdwn and
sent as plain text by email, with the subject built from fixed words only.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from digestbot.alerts import Alert, FanOutNotifier, LogNotifier, Notifier
from digestbot.config import Settings
from digestbot.delivery.email import SmtpFactory, build_smtp_factory
from digestbot.errors import DeliveryError
from digestbot.render import escape_mrkdwn

log = logging.getLogger(__name__)

_TITLES = {
    "delivery-failed": "a digest delivery failed",
    "digest-rejected": "a digest was refused for its content",
    "source-failing": "a source keeps failing",
    "digest-empty": "a scheduled digest was skipped",
}


def alert_title(alert: Alert) -> str:
    return _TITLES.get(alert.kind, "alert")


class SlackAlertNotifier:
    """Posts each alert to one channel with a bot-token ``WebClient``."""

    def __init__(self, client: WebClient, channel: str) -> None:
        self.client = client
        self.channel = channel
        # an alert is given once (claimed first): a 429 waits for Retry-After, not loses it
        if not any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))

    def notify(self, alert: Alert) -> None:
        text = f":warning: *digestbot: {alert_title(alert)}*\n{escape_mrkdwn(alert.message)}"
        try:
            self.client.chat_postMessage(channel=self.channel, text=text, mrkdwn=True)
        except SlackApiError as exc:
            reason = str(exc.response.get("error", "")) or "error"
            raise DeliveryError(
                f"Slack refused the alert: {reason}",
                destination=f"slack:{self.channel}",
                reason=reason,
            ) from exc
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(
                f"cannot reach Slack: {exc.__class__.__name__}",
                destination=f"slack:{self.channel}",
            ) from exc


class EmailAlertNotifier:
    """Mails each alert, as plain text, to the ``alerts.email`` addresses (one message each)."""

    def __init__(self, connect: SmtpFactory, *, sender: str, to: Sequence[str]) -> None:
        self.connect = connect
        self.sender = sender
        self.to = list(to)

    def build_message(self, alert: Alert, recipient: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = recipient
        message["Subject"] = f"digestbot alert: {alert_title(alert)}"
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="digestbot.invalid")
        message["Auto-Submitted"] = "auto-generated"
        fields = [
            f"{name}: {value}"
            for name, value in (
                ("profile", alert.profile),
                ("destination", alert.destination),
                ("digest", alert.digest_id),
                ("source", alert.source),
            )
            if value
        ]
        message.set_content("\n".join([alert.message, "", *fields]) + "\n")
        return message

    def notify(self, alert: Alert) -> None:
        label = "email:" + ",".join(self.to)
        refused: list[str] = []
        try:
            conn = self.connect()
            try:
                for recipient in self.to:
                    try:
                        conn.send_message(self.build_message(alert, recipient))
                    except smtplib.SMTPRecipientsRefused:  # that one address: the rest still
                        refused.append(recipient)
            finally:
                conn.quit()
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"cannot mail the alert: {exc.__class__.__name__}", destination=label
            ) from exc
        if refused:
            raise DeliveryError(
                "the SMTP server refused the alert for " + ", ".join(refused), destination=label
            )


def build_notifier(settings: Settings) -> Notifier:
    """The log, plus Slack and email as ``alerts:`` asks."""
    notifiers: list[Notifier] = [LogNotifier()]
    channel = settings.alerts.slack_channel
    if channel:
        token = settings.slack.bot_token
        if token is None:
            log.warning("alerts.slack_channel is set but slack.bot_token is not: no Slack alerts")
        else:
            client = WebClient(token=token.get_secret_value(), base_url=settings.slack.base_url)
            notifiers.append(SlackAlertNotifier(client, channel))
    if settings.alerts.email:
        notifiers.append(
            EmailAlertNotifier(
                build_smtp_factory(settings.email.smtp),
                sender=settings.email.sender,
                to=settings.alerts.email,
            )
        )
    return FanOutNotifier(notifiers)
