"""The shipped Slack manifest points /papers and interactivity at the endpoint we serve."""

from __future__ import annotations

import yaml

from digestbot.server import SLACK_EVENTS_PATH
from tests.conftest import REPO


def test_manifest_declares_the_command_the_endpoint_and_the_scopes_we_use() -> None:
    manifest = yaml.safe_load((REPO / "slack-manifest.yaml").read_text("utf-8"))
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/papers"
    assert command["url"].endswith(SLACK_EVENTS_PATH)
    interactivity = manifest["settings"]["interactivity"]
    assert interactivity["is_enabled"] is True
    assert interactivity["request_url"].endswith(SLACK_EVENTS_PATH)
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "users:read", "im:write"} <= scopes
    # reading a channel back before a retry is what makes Slack delivery exactly-once
    assert {"channels:history", "groups:history", "im:history"} <= scopes
