"""``digestbot run --once`` and ``--log-format json`` through the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import SEEDS, write_config


def test_run_once_ingests_and_exits_0(cli: Any, tmp_path: Path) -> None:
    (tmp_path / "drops").mkdir()
    shutil.copy(SEEDS / "000_ca14cdb193ee54f8.txt", tmp_path / "drops" / "a.txt")
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\n"
        "drops: {path: drops, settle_seconds: 0}\nprofiles: []\n",
    )
    result = cli("--config", str(config), "run", "--once")
    assert result.exit_code == 0, result.stderr
    papers = cli("--config", str(config), "papers", "--json")
    assert len(json.loads(papers.stdout)) == 11
    status = json.loads(cli("--config", str(config), "status", "--json").stdout)
    assert [Path(f["path"]).name for f in status["files"]] == ["a.txt"]
    assert status["scheduler"] is None  # the lock was let go


def test_run_once_exits_1_when_a_source_failed_and_logs_json(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, "database_url: sqlite:///data/x.sqlite3\ndrops: {path: missing}\nprofiles: []\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    result = subprocess.run(
        [sys.executable, "-m", "digestbot", "--config", str(config), "--log-format", "json",
         "run", "--once"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stderr.splitlines()]
    failed = [e for e in events if e.get("event") == "source.failed"]
    assert failed and failed[0]["source"] == "drops" and failed[0]["level"] == "error"
    assert "missing: the drops folder does not exist" in failed[0]["message"]


def test_the_example_config_holds_the_daemon_keys() -> None:
    from digestbot.config import load_settings
    from tests.conftest import REPO

    env = {
        "SLACK_BOT_TOKEN": "x",
        "SLACK_SIGNING_SECRET": "x",
        "SMTP_PASSWORD": "x",
        "SLACK_WEBHOOK": "https://hooks.slack.invalid/x",
        "DIGESTBOT_UNSUBSCRIBE_SECRET": "x",
    }
    settings = load_settings(REPO / "config.example.yaml", env=env)
    assert settings.alerts.source_failures == 3
    assert settings.misfire_grace == "6h"
    assert settings.profiles[0].schedule.timezone == "Europe/Berlin"


def test_a_bad_cron_value_names_the_config_file_and_the_profile(cli: Any, tmp_path: Path) -> None:
    # the config's validation checks only that cron has five fields (APScheduler is not
    # imported by every command): run and status check the values, naming file and key
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\n"
        "profiles:\n"
        "  - {name: fine, keywords: [attention]}\n"
        "  - {name: typo, keywords: [attention], schedule: {cron: '99 8 * * *'}}\n",
    )
    for command in (["run", "--once"], ["status"]):
        result = cli("--config", str(config), *command)
        assert result.exit_code != 0
        message = result.stderr
        assert f"{config}: profiles.1.schedule.cron: bad cron '99 8 * * *'" in message, message
        assert "'typo'" in message and "Traceback" not in message
