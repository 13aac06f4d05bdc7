"""``digestbot serve`` without Slack: only /unsubscribe and /healthz, as a real process."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from digestbot.newsletter import make_token
from digestbot.store import SqlStore
from digestbot.store.subscribers import load_subscribers
from tests.conftest import write_config
from tests.serve_process import serve_process

CONFIG = """
database_url: sqlite:///db.sqlite3
profiles:
  - name: attn
    keywords: [attention]
email:
  unsubscribe_secret: ${DIGESTBOT_UNSUBSCRIBE_SECRET}
"""


def test_serve_runs_with_only_the_unsubscribe_routes(tmp_path: Path, cli) -> None:
    path = str(write_config(tmp_path, CONFIG))
    secret = "serve-secret"
    env = {**os.environ, "DIGESTBOT_UNSUBSCRIBE_SECRET": secret}
    env.pop("SLACK_BOT_TOKEN", None)
    with serve_process(path, env=env, cwd=tmp_path, route="/unsubscribe") as base:
        token = make_token(secret, profile="attn", address="alice@example.org")
        request = urllib.request.Request(
            f"{base}/unsubscribe?t={token}", data=b"List-Unsubscribe=One-Click", method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        try:
            urllib.request.urlopen(f"{base}/slack/events", timeout=10)
            raise AssertionError("no Slack route without Slack")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
            exc.close()
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        assert [(s.address, s.status) for s in load_subscribers(store)] == [
            ("alice@example.org", "unsubscribed")
        ]
    finally:
        store.close()
