"""Logging set-up: one line per event, as text or JSON (``--log-format json``).

Events carry their identifying fields as ``extra`` (``event``, ``profile``,
``destination``, ``digest_id``, ``source``); the text format has them in the
message already, the JSON format adds them as keys.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Literal

from digestbot.redact import redact_urls

LogFormat = Literal["text", "json"]
EVENT_FIELDS = ("event", "profile", "destination", "digest_id", "source")
REDACTED = "[secret]"
MIN_SECRET_LENGTH = 6  # shorter values would blank out ordinary words of every line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the event fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EVENT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: int, *, fmt: LogFormat = "text") -> None:
    """Log to stderr at ``level``; the format is text or one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines with every known secret replaced by ``[secret]``: libraries
    log what they send at debug level (slack_sdk a webhook's URL, which is its secret).
    Credentials in any URL of the line (userinfo, ``?token=``…: a feed's) show as ``***``."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner
        self.secrets: list[str] = []

    def add(self, values: Iterable[str]) -> None:
        found = set(self.secrets)
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                found.update({value, json.dumps(value)[1:-1]})  # as written, and in JSON
        self.secrets = sorted(found, key=len, reverse=True)  # a secret inside another last

    def format(self, record: logging.LogRecord) -> str:
        text = self.inner.format(record)
        hidden = [secret for secret in self.secrets if secret in text]
        if hidden:
            name = record.name
            # the logger's name is the program's own, no secret: a secret it holds (a
            # password "digestbot") is hidden elsewhere in the line, not in every name
            if any(secret in name for secret in hidden):
                kept = name.join(_hide(part, hidden) for part in text.split(name))
                if not any(secret in kept for secret in hidden if secret not in name):
                    return redact_urls(kept)
            text = _hide(text, hidden)
        return redact_urls(text)


def _hide(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def redact_secrets(values: Iterable[str]) -> None:
    """Hide these values in every line the root logger's handlers write from now on."""
    values = list(values)
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if not isinstance(formatter, RedactingFormatter):
            formatter = RedactingFormatter(formatter or logging.Formatter())
            handler.setFormatter(formatter)
        formatter.add(values)
