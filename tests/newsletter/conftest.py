"""Newsletter fixtures: the delivery tests' real SMTP server, and /unsubscribe over real HTTP."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from digestbot.config import Settings
from digestbot.server import build_http_server, build_router
from digestbot.store import SqlStore
from digestbot.unsubscribe import UnsubscribeApp
from tests.conftest import NOW
from tests.delivery.helpers import settings_for

SECRET = "test-unsubscribe-secret"


@dataclass
class Web:
    url: str
    app: UnsubscribeApp

    def request(self, url: str, *, data: bytes | None = None) -> tuple[int, str]:
        req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read().decode("utf-8")
        except urllib.error.HTTPError as exc:
            body = exc.read().decode("utf-8")
            exc.close()
            return exc.code, body


@pytest.fixture
def web(store: SqlStore) -> Iterator[Web]:
    """``/unsubscribe`` served by the real router and threaded server on 127.0.0.1."""
    app = UnsubscribeApp(store, secret=SECRET, clock=lambda: NOW)
    server = build_http_server(build_router(unsubscribe=app), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Web(url=f"http://127.0.0.1:{server.server_port}", app=app)
    server.shutdown()
    server.server_close()
    thread.join(5)


def newsletter_settings(
    *,
    public_url: str | None,
    to: list[str] | None = None,
    secret: str | None = SECRET,
    weekly_day: str = "mon",
    top_k: int = 10,
    timezone: str = "UTC",
    **extra: Any,
) -> Settings:
    deliver = [{"email": {"to": to}}] if to else []
    email: dict[str, Any] = {
        "sender": "Paper Digest <digest@example.org>",
        "weekly_day": weekly_day,
    }
    if secret is not None:
        email["unsubscribe_secret"] = secret
    return settings_for(
        deliver=deliver,
        top_k=top_k,
        timezone=timezone,
        extra={"email": email, "server": {"public_url": public_url}, **extra},
    )


def at(day: int, hour: int = 9) -> datetime:
    """A time in November 2026 (the 23rd is a Monday)."""
    return NOW.replace(day=day, hour=hour)
