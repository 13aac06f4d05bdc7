"""``digestbot serve``: configuration errors, and the real command serving /healthz."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from tests.conftest import write_config
from tests.serve_process import serve_process

CONFIG = """
database_url: sqlite:///db.sqlite3
profiles:
  - name: p
    keywords: [attention]
slack:
  bot_token: ${SLACK_BOT_TOKEN:-}
  signing_secret: ${SLACK_SIGNING_SECRET:-}
"""


def _config(tmp_path: Path, text: str = CONFIG) -> str:
    return str(write_config(tmp_path, text))


def test_serve_needs_a_bot_token_and_a_signing_secret(tmp_path: Path, cli) -> None:
    path = _config(
        tmp_path,
        CONFIG.replace("${SLACK_BOT_TOKEN:-}", "null").replace("${SLACK_SIGNING_SECRET:-}", "null"),
    )
    result = cli("--config", path, "serve")
    assert result.exit_code == 2
    assert "slack.bot_token" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    path = _config(
        tmp_path,
        CONFIG.replace("${SLACK_BOT_TOKEN:-}", "xoxb-1").replace(
            "${SLACK_SIGNING_SECRET:-}", "null"
        ),
    )
    result = cli("--config", path, "serve")
    assert result.exit_code == 2
    assert "slack.signing_secret" in result.stderr and "xoxb-1" not in result.stderr


def test_socket_mode_needs_an_app_token(tmp_path: Path, cli) -> None:
    path = _config(
        tmp_path,
        CONFIG.replace("${SLACK_BOT_TOKEN:-}", "xoxb-1").replace(
            "${SLACK_SIGNING_SECRET:-}", "null"
        ),
    )
    result = cli("--config", path, "serve", "--socket-mode", env={"SLACK_APP_TOKEN": ""})
    assert result.exit_code == 2
    assert "slack.app_token" in result.stderr and "SLACK_APP_TOKEN" in result.stderr


def test_serve_listens_and_answers_healthz(tmp_path: Path) -> None:
    path = _config(tmp_path)
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s3cret",
        "SLACK_APP_TOKEN": "",
    }
    with serve_process(path, env=env, cwd=tmp_path, route="/slack/events") as base:
        response = urllib.request.urlopen(f"{base}/healthz", timeout=10)
        with response:
            assert (response.status, response.read()) == (200, b"ok\n")
