"""``digestbot fetch`` and ``digestbot feeds`` through the CLI, against a local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import as_json, write_config
from tests.feed_server import FEEDS, RSS_FIRST50, Answer, FeedServer, Route


@pytest.fixture
def config(tmp_path: Path, server: FeedServer) -> Path:
    server.routes["/good"] = Route(body=RSS_FIRST50.read_bytes(), etag='"1"')
    server.routes["/bad"] = Route(
        body=(FEEDS / "arxiv_rss_2024-11-28_error_bad-archive-name.xml").read_bytes()
    )
    server.routes["/gone"] = Route(script=[Answer(404, b"no")])
    return write_config(
        tmp_path,
        f"""
database_url: sqlite:///data/db.sqlite3
feeds:
  - name: good
    url: {server.url("/good")}
  - name: bad
    url: {server.url("/bad")}
  - name: gone
    url: {server.url("/gone")}
    timeout: 5
""",
    )


def test_fetch_json_reports_each_feed_and_exits_1_when_one_failed(cli, config: Path) -> None:
    result = cli("--config", str(config), "fetch", "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert report["papers"] == {"new": 50, "merged": 0, "updated": 0, "skipped": 0}
    feeds = {f["name"]: f for f in report["feeds"]}
    assert feeds["good"]["status"] == "ok" and feeds["good"]["new"] == 50
    assert feeds["bad"]["status"] == "failed"
    assert "Bad archive 'astroph'" in feeds["bad"]["error"]
    assert feeds["gone"]["error"] == "gone: HTTP 404 Not Found"
    assert len(as_json(cli("--config", str(config), "papers", "--json"))) == 50


def test_fetch_one_feed_then_again_is_not_modified(cli, config: Path, server: FeedServer) -> None:
    first = cli("--config", str(config), "fetch", "--feed", "good")
    assert first.exit_code == 0, first.stderr
    assert "good: 50 items: 50 new, 0 merged, 0 updated, 0 skipped" in first.output
    again = cli("--config", str(config), "fetch", "--feed", "good")
    assert "good: not modified" in again.output
    assert server.hits("/good") == 2 and server.hits("/bad") == 0
    health = {row["name"]: row for row in as_json(cli("--config", str(config), "feeds", "--json"))}
    assert health["good"]["last_status"] == "not-modified" and health["good"]["items_seen"] == 50
    assert health["bad"]["last_status"] is None
    # a feed never polled has the same keys as one polled (stable --json keys)
    assert health["bad"] == {
        "name": "bad",
        "url": health["bad"]["url"],
        "kind": "rss-or-atom",
        "last_status": None,
        "last_attempt": None,
        "last_success": None,
        "last_error": None,
        "last_error_at": None,
        "consecutive_failures": 0,
        "last_items": 0,
        "items_seen": 0,
    }
    assert set(health["good"]) == set(health["bad"])


def test_fetch_an_unknown_feed_is_a_clear_error(cli, config: Path) -> None:
    result = cli("--config", str(config), "fetch", "--feed", "nope")
    assert result.exit_code == 2
    assert "unknown feed 'nope' (known: good, bad, gone)" in result.stderr


def test_fetch_without_feeds_says_so(cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, "database_url: sqlite:///data/db.sqlite3\n")
    result = cli("--config", str(config), "fetch")
    assert result.exit_code == 0 and "no feeds configured" in result.stderr
    # --json: the documented keys, all zero (``papers`` was an empty object)
    assert as_json(cli("--config", str(config), "fetch", "--json")) == {
        "ok": True,
        "papers": {"new": 0, "merged": 0, "updated": 0, "skipped": 0},
        "feeds": [],
    }


def test_feeds_says_how_long_a_feed_has_been_failing(cli, config: Path, server: FeedServer) -> None:
    # a feed down for days: the text shows the streak, not just "failed"
    server.routes["/gone"] = Route(script=[Answer(404, b"no")] * 2)
    for _ in range(2):
        cli("--config", str(config), "fetch", "--feed", "gone")
    lines = cli("--config", str(config), "feeds").output.splitlines()
    gone = next(line for line in lines if line.startswith("gone"))
    assert "failed 2 times in a row" in gone and "error: gone: HTTP 404 Not Found" in gone
    good = next(line for line in lines if line.startswith("good"))
    assert "in a row" not in good


def test_feeds_without_feeds_says_so(cli, tmp_path: Path) -> None:
    config = write_config(tmp_path, "database_url: sqlite:///data/db.sqlite3\n")
    result = cli("--config", str(config), "feeds")
    assert result.exit_code == 0
    assert "no feeds configured" in result.output
