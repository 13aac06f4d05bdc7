"""Logging set-up: one line per event, as text or JSON (``--log-format json``).

Events carry their identifying fields as ``extra`` (``event``, ``profile``,
``destination``, ``digest_id``, ``source``); the text format has them in the
message already, the JSON format adds them as keys.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
EVENT_FIELDS = ("event", "profile", "destination", "digest_id", "source")


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
