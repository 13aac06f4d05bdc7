"""``digestbot check``: the config checked for what running it would meet, nothing written."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from click.testing import Result

from digestbot.store import SqlStore
from digestbot.store.schema import SCHEMA_VERSION
from tests.conftest import SEEDS, as_json, write_config


def findings(result: Result) -> dict[str, tuple[str, str]]:
    report = json.loads(result.stdout)
    return {f["key"]: (f["level"], f["message"]) for f in report["findings"]}


def test_a_good_config_passes_and_nothing_is_created(tmp_path: Path, cli) -> None:
    shutil.copytree(SEEDS, tmp_path / "drops")
    write_config(
        tmp_path,
        "database_url: sqlite:///data/db.sqlite3\n"
        "drops: {path: drops}\n"
        "ranking: {embedding_model: null}\n"
        "profiles:\n"
        "  - name: attn\n    keywords: [linear attention]\n"
        "    schedule: {cron: '30 7 * * mon-fri', timezone: Europe/Berlin}\n"
        "    deliver: [{file: {path: out}}]\n",
    )
    result = cli("check")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "0 errors, 0 warnings"
    result = cli("check", "--json")
    report = as_json(result)
    assert report["ok"] is True and report["errors"] == 0
    found = findings(result)
    assert found["profiles.0.schedule.cron"][0] == "ok"
    assert "Europe/Berlin" in found["profiles.0.schedule.cron"][1]
    assert found["drops.path"][0] == "ok" and found["drops.path"][1].endswith("drops (4 files)")
    assert found["ranking.embedding_model"][0] == "ok"
    assert "lexical" in found["ranking.embedding_model"][1]
    assert found["database_url"][0] == "ok" and "does not exist yet" in found["database_url"][1]
    assert not (tmp_path / "data" / "db.sqlite3").exists()  # checked, not created


def test_each_problem_is_named_by_its_key_and_the_exit_status_is_1(tmp_path: Path, cli) -> None:
    templates = tmp_path / "mine" / "markdown"
    templates.mkdir(parents=True)
    (templates / "digest.md.j2").write_text(
        "# {{ digest.profile }}\n\n{% for paper in digest.papers %}\n{{ paper.title }\n",
        "utf-8",
    )
    write_config(
        tmp_path,
        "database_url: sqlite:///data/db.sqlite3\n"
        "drops: {path: nowhere}\n"
        "templates_dir: mine\n"
        "ranking: {embedding_model: null}\n"
        "alerts: {slack_channel: C0ALERTS}\n"
        "profiles:\n"
        "  - name: attn\n    keywords: [x]\n"
        "    schedule: {cron: '75 7 * * *'}\n"
        "    deliver: [{slack: {channel: C01}}, {slack: {webhook_url: 'https://example.org/h'}}]\n",
    )
    result = cli("check")
    assert result.exit_code == 1, result.output
    result = cli("check", "--json")
    assert result.exit_code == 1
    found = findings(result)
    level, message = found["profiles.0.schedule.cron"]
    assert level == "error" and "75" in message and "'attn'" in message
    level, message = found["templates_dir"]
    assert level == "error" and "digest.md.j2, line 4" in message
    level, message = found["profiles.0.deliver.0.slack.channel"]
    assert level == "error" and "slack.bot_token" in message
    assert not any(key.startswith("profiles.0.deliver.1") for key in found)  # a webhook: fine
    assert found["alerts.slack_channel"][0] == "warning"
    assert found["drops.path"][0] == "warning" and "does not exist" in found["drops.path"][1]
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["errors"] == 3 and report["warnings"] == 2


def test_an_older_schema_is_reported_and_left_alone_a_newer_one_is_an_error(
    tmp_path: Path, cli
) -> None:
    db = tmp_path / "data" / "db.sqlite3"
    SqlStore.open(f"sqlite:///{db}").close()
    write_config(tmp_path, "database_url: sqlite:///data/db.sqlite3\ndrops: {path: .}\n")

    def set_version(value: int) -> None:
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE schema_info SET value = ? WHERE key = 'version'", (str(value),))

    def version() -> str:
        with sqlite3.connect(db) as conn:
            return str(
                conn.execute("SELECT value FROM schema_info WHERE key = 'version'").fetchone()[0]
            )

    level, message = findings(cli("check", "--json"))["database_url"]
    assert level == "ok" and message.endswith(f"db.sqlite3: schema version {SCHEMA_VERSION}")
    set_version(SCHEMA_VERSION - 1)
    result = cli("check", "--json")
    assert result.exit_code == 0
    level, message = findings(result)["database_url"]
    assert level == "warning" and f"upgrades it to {SCHEMA_VERSION}" in message
    assert version() == str(SCHEMA_VERSION - 1)  # not upgraded by the check
    set_version(SCHEMA_VERSION + 1)
    result = cli("check", "--json")
    assert result.exit_code == 1
    level, message = findings(result)["database_url"]
    assert level == "error" and "newer than this digestbot" in message


def test_an_unreachable_database_names_the_server_not_the_password(tmp_path: Path, cli) -> None:
    write_config(
        tmp_path,
        "database_url: postgresql+psycopg://digest:s3cretpw@127.0.0.1:9/digestbot\n"
        "drops: {path: .}\n",
    )
    result = cli("check", "--json")
    assert result.exit_code == 1
    level, message = findings(result)["database_url"]
    assert level == "error"
    assert "s3cretpw" not in result.output
    assert "127.0.0.1" in message or "psycopg" in message  # refused, or the extra missing


def test_weekly_subscribers_of_a_profile_whose_schedule_skips_the_weekly_day_are_a_warning(
    tmp_path: Path, cli
) -> None:
    # weekly readers get their digest only from a send on email.weekly_day: a profile sent
    # on Tuesdays and Thursdays never mailed them, and nothing said so
    write_config(
        tmp_path,
        "database_url: sqlite:///db.sqlite3\n"
        "drops: {path: drops}\n"
        "email: {smtp: {host: 127.0.0.1}, sender: digest@example.org, weekly_day: mon}\n"
        "profiles:\n"
        "  - name: twice\n    keywords: [attention]\n"
        "    schedule: {cron: '0 8 * * tue,thu', timezone: Europe/Berlin}\n"
        "  - name: daily\n    keywords: [mamba]\n"
        "  - name: quiet\n    keywords: [scaling]\n"
        "    schedule: {cron: '0 8 * * fri'}\n",
    )
    (tmp_path / "drops").mkdir()
    assert (
        cli("subscribers", "add", "--profile", "twice", "--weekly", "w@example.org").exit_code == 0
    )
    assert (
        cli("subscribers", "add", "--profile", "daily", "--weekly", "v@example.org").exit_code == 0
    )
    assert cli("subscribers", "add", "--profile", "quiet", "d@example.org").exit_code == 0
    result = cli("check", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    weekly = [f for f in report["findings"] if f["key"].startswith("email.weekly_day")]
    assert weekly == [
        {
            "level": "warning",
            "key": "email.weekly_day",
            "message": "profile 'twice' has 1 weekly subscriber(s), but its schedule"
            " ('0 8 * * tue,thu', Europe/Berlin) never sends on a mon: they get no digest"
            " (set email.weekly_day to a day it sends on)",
        }
    ]


def test_liked_papers_not_in_the_store_are_a_warning_naming_them(tmp_path: Path, cli) -> None:
    # a like: entry that names no stored paper was left out with only a log line at each
    # rank; a like-only profile whose likes all miss sent empty digests, and nothing said so
    shutil.copytree(SEEDS, tmp_path / "drops")
    write_config(
        tmp_path,
        "database_url: sqlite:///db.sqlite3\n"
        "drops: {path: drops}\n"
        "ranking: {embedding_model: null}\n"
        "profiles:\n"
        "  - name: typo\n"
        "    like: ['Atention Is All You Need']\n"
        "  - name: mixed\n    keywords: [attention]\n"
        "    like: ['towards atoms of  LARGE language models', 'No Such Paper']\n"
        "  - name: fine\n"
        "    like: ['Towards Atoms of Large Language Models']\n",
    )
    assert cli("check", "--json").exit_code == 0  # before the first ingest: nothing to say
    assert not any(k.endswith(".like") for k in findings(cli("check", "--json")))
    assert cli("ingest").exit_code == 0
    result = cli("check", "--json")
    assert result.exit_code == 0, result.output
    likes = {k: v for k, v in findings(result).items() if k.endswith(".like")}
    assert likes == {
        "profiles.0.like": (
            "warning",
            "profile 'typo': 1 of 1 liked papers are not in the store (a paper id or its exact"
            " title): 'Atention Is All You Need'; ranked without them, it has nothing to rank"
            " by and its digests stay empty",
        ),
        "profiles.1.like": (
            "warning",
            "profile 'mixed': 1 of 2 liked papers are not in the store (a paper id or its exact"
            " title): 'No Such Paper'; ranked without them",
        ),
    }
