"""Error messages a new user meets without Slack, SMTP or the semantic extra: each says
what to change, in the words the configuration uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import SEEDS, as_json, write_config
from tests.feed_server import Answer, FeedServer, Route

PROFILES = "profiles:\n  - {name: a, keywords: [linear attention]}\n"


def test_embed_without_a_model_says_why_not_only_set_the_model(tmp_path: Path, cli) -> None:
    # the default, auto, with DIGESTBOT_AUTO_EMBEDDINGS=0 (as the tests run): auto is off
    write_config(tmp_path, "database_url: sqlite:///db.sqlite3\n" + PROFILES)
    result = cli("embed")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: config.yaml: ranking.embedding_model: no model to embed with: "
        "auto, but DIGESTBOT_AUTO_EMBEDDINGS=0 turns auto off"
    )
    assert "set ranking.embedding_model" not in result.stderr  # it is set: to auto

    write_config(
        tmp_path, 'database_url: sqlite:///db.sqlite3\nranking: {embedding_model: ""}\n' + PROFILES
    )
    result = cli("embed")
    assert result.exit_code == 2
    assert "no model to embed with: empty: ranking is lexical" in result.stderr


SLACK_FROM_ENV = """
database_url: sqlite:///db.sqlite3
profiles:
  - {name: p, keywords: [attention]}
slack:
  bot_token: ${SLACK_BOT_TOKEN:-}
  signing_secret: ${SLACK_SIGNING_SECRET:-}
  base_url: http://127.0.0.1:9/api/
"""


def test_serve_with_an_empty_token_or_secret_is_a_config_error_not_a_traceback(
    tmp_path: Path, cli
) -> None:
    """``${VAR:-}`` with VAR unset gives an empty value: no token, as if the key were absent."""
    write_config(tmp_path, SLACK_FROM_ENV)
    result = cli("serve", "--port", "0", env={"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""})
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config.yaml: slack.bot_token: needed to answer")
    # the variable named is one digestbot reads (SLACK_BOT_TOKEN only through the config)
    assert "DIGESTBOT_SLACK__BOT_TOKEN" in result.stderr

    result = cli(
        "serve", "--port", "0", env={"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": " "}
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("error: config.yaml: slack.signing_secret: needed to verify")
    assert "DIGESTBOT_SLACK__SIGNING_SECRET" in result.stderr


def test_a_channel_digest_without_a_token_fails_saying_so(tmp_path: Path, cli) -> None:
    write_config(
        tmp_path,
        SLACK_FROM_ENV.replace(
            "{name: p, keywords: [attention]}",
            "{name: p, keywords: [attention], deliver: [{slack: {channel: C0123456789}}]}",
        ),
    )
    shutil.copytree(SEEDS, tmp_path / "seeds")
    assert cli("ingest").exit_code == 0
    result = cli("send", "--json", env={"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""})
    assert result.exit_code == 1
    (outcome,) = json.loads(result.stdout)
    assert outcome["status"] == "failed"
    assert "slack.bot_token is not set" in outcome["error"]


def test_fetch_send_and_status_name_the_feed_or_destination_once(
    tmp_path: Path, cli, server: FeedServer
) -> None:
    """The error names its feed or destination (for logs and --json); the text line, which
    starts with that name, does not repeat it."""
    server.routes["/gone"] = Route(script=[Answer(404, b"no")])
    write_config(
        tmp_path,
        SLACK_FROM_ENV.replace(
            "{name: p, keywords: [attention]}",
            "{name: p, keywords: [attention], deliver: [{slack: {channel: C0123456789}}]}",
        )
        + f"feeds:\n  - {{name: gone, url: '{server.url('/gone')}', timeout: 5}}\n",
    )
    fetch = cli("fetch")
    assert fetch.exit_code == 1
    assert "gone: FAILED: HTTP 404 Not Found" in fetch.stderr + fetch.stdout
    assert as_json(cli("feeds", "--json"))[0]["last_error"] == "gone: HTTP 404 Not Found"

    shutil.copytree(SEEDS, tmp_path / "seeds")
    assert cli("ingest").exit_code == 0
    env = {"SLACK_BOT_TOKEN": "", "SLACK_SIGNING_SECRET": ""}
    send = cli("send", env=env)
    assert send.exit_code == 1
    assert "FAILED        p → slack:C0123456789: slack.bot_token is not set" in send.stderr
    status = cli("status", env=env).stdout
    assert "failed  error: slack.bot_token is not set" in status
    history = cli("history", env=env).stdout
    assert "error: slack.bot_token is not set" in history
    assert "slack:C0123456789: slack:C0123456789" not in send.stderr + status + history
