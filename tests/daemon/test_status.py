"""``digestbot status``: next runs from the triggers, the ledger when present, the lock."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from digestbot.config import parse_settings
from digestbot.status import build_status, load_last_deliveries, load_open_digests
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock, record_job_result
from digestbot.store.ledger import deliveries
from tests.conftest import as_json, write_config

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)  # a Friday


def test_an_empty_ledger_has_no_deliveries(store: SqlStore) -> None:
    assert load_last_deliveries(store) == []
    assert load_open_digests(store) == []


def test_the_last_digest_per_destination_and_the_open_ones(store: SqlStore) -> None:
    table = deliveries  # the real ledger (status reads it by reflection)
    rows: list[dict[str, Any]] = [
        {"digest_id": "d1", "profile": "attn", "destination": "slack:C1",
         "digest_date": date(2026, 11, 25), "status": "sent", "error": None},
        {"digest_id": "d2", "profile": "attn", "destination": "slack:C1",
         "digest_date": date(2026, 11, 26), "status": "failed", "error": "channel_not_found"},
        {"digest_id": "d3", "profile": "attn", "destination": "email:a@x.org",
         "digest_date": date(2026, 11, 26), "status": "sent", "error": None},
    ]  # fmt: skip
    with store.engine.begin() as conn:
        conn.execute(
            table.insert(),
            [
                {
                    **r,
                    "watermark": 0,
                    "paper_count": 3,
                    "attempts": 1,
                    "created_at": NOW,
                    "updated_at": NOW,
                }
                for r in rows
            ],
        )
    last = load_last_deliveries(store)
    assert [(d["destination"], d["digest_id"], d["status"], d["error"]) for d in last] == [
        ("email:a@x.org", "d3", "sent", None),
        ("slack:C1", "d2", "failed", "channel_not_found"),
    ]
    assert [d["digest_id"] for d in load_open_digests(store)] == ["d2"]


def test_status_reports_next_runs_files_sources_and_the_holder(store: SqlStore) -> None:
    settings = parse_settings(
        {
            "profiles": [
                {"name": "attn", "keywords": ["a"],
                 "schedule": {"cron": "0 8 * * mon-fri", "timezone": "Europe/Berlin"}},
            ]
        },
        env={},
    )  # fmt: skip
    acquire_lock(store, "scheduler", holder="h:1:u", now=NOW, stale_after=timedelta(seconds=90))
    record_job_result(store, "drops", ok=False, now=NOW, error="seeds: permission denied")
    report = build_status(settings, store, now=NOW + timedelta(seconds=200))
    [profile] = report["profiles"]
    assert profile["next_run"] == "2026-11-30T07:00:00+00:00"  # Monday 08:00 in Berlin
    assert profile["next_run_local"] == "2026-11-30T08:00:00+01:00"
    assert profile["due_since"] == "2026-11-27T07:00:00+00:00"
    assert report["scheduler"]["holder"] == "h:1:u"
    assert report["scheduler"]["stale"] is True  # no heartbeat for 200 s
    assert report["sources"][0]["last_error"] == "seeds: permission denied"
    json.dumps(report)  # serialisable as is


def test_status_command_json(cli: Any, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\nprofiles:\n  - name: attn\n    keywords: [a]\n",
    )
    result = cli("--config", str(config), "--now", "2026-11-23T09:00:00Z", "status", "--json")
    report = as_json(result)
    assert report["profiles"][0]["next_run"] == "2026-11-24T08:00:00+00:00"
    assert report["scheduler"] is None
    text = cli("--config", str(config), "--now", "2026-11-23T09:00:00Z", "status")
    assert text.exit_code == 0
    assert "scheduler: not running" in text.stdout
    assert "attn" in text.stdout and "2026-11-24T08:00:00+00:00" in text.stdout


def test_status_lists_configured_feeds_only_each_once(cli: Any, tmp_path: Path) -> None:
    """A feed removed from the config stayed in ``status`` as a failing source forever; a
    failing feed the daemon also recorded was listed twice, under its bare name."""
    from digestbot.store.feeds import record_feed_failure

    db = tmp_path / "data" / "x.sqlite3"
    store = SqlStore.open(f"sqlite:///{db}")
    with store.transaction() as conn:
        record_feed_failure(
            conn, "kept", url="http://127.0.0.1:9/k", error="kept: HTTP 503", now=NOW
        )
        record_feed_failure(
            conn, "gone", url="http://127.0.0.1:9/g", error="gone: HTTP 404", now=NOW
        )
        record_feed_failure(conn, "other", url="http://127.0.0.1:9/o", error="other: 500", now=NOW)
    record_job_result(store, "feed:kept", ok=False, now=NOW, error="kept: HTTP 503")
    record_job_result(store, "feed:gone", ok=False, now=NOW, error="gone: HTTP 404")
    store.close()
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\nprofiles:\n  - name: attn\n    keywords: [a]\n"
        "feeds:\n  - {name: kept, url: 'http://127.0.0.1:9/k'}\n"
        "  - {name: other, url: 'http://127.0.0.1:9/o'}\n",
    )
    report = as_json(cli("--config", str(config), "status", "--json"))
    assert [f["name"] for f in report["feeds"]] == ["kept", "other"]
    text = cli("--config", str(config), "status").stdout
    sources = text[text.index("sources:") :].splitlines()
    assert sources[:3] == [
        "sources: ",
        "  feed:kept: 1 failures, last: kept: HTTP 503",
        "  feed:other: 1 failures, last: other: 500",
    ]
    assert "gone" not in text and "  kept:" not in text
