"""A feed URL's credentials (userinfo, a token in its query) are fetched with, never shown."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from digestbot.redact import redact_url, redact_urls
from tests.conftest import write_config
from tests.feed_server import RSS_FIRST50, Answer, FeedServer, Route

SECRETS = ("TOKSECRET1", "PWSECRET2", "KEYSECRET3", "TOKSECRET4", "TOKSECRET5", "SIGSECRET6")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@host/feed", "https://***@host/feed"),
        ("https://host/feed?token=abc", "https://host/feed?token=***"),
        (
            "https://u@host:8443/f?a=1&API_KEY=x&Sig=y&page=2#top",
            "https://***@host:8443/f?a=1&API_KEY=***&Sig=***&page=2#top",
        ),
        ("https://host/f?private-token=x&X-Amz-Signature=y", None),
        (
            "https://host/f?keyword=x&monkey=y&authors=z",
            "https://host/f?keyword=x&monkey=y&authors=z",
        ),
        ("https://host/a@b/feed?q=1", "https://host/a@b/feed?q=1"),  # an @ in the path: no user
        ("not a url", "not a url"),
    ],
)
def test_redact_url(url: str, shown: str | None) -> None:
    if shown is None:
        shown = "https://host/f?private-token=***&X-Amz-Signature=***"
    assert redact_url(url) == shown


def test_redact_urls_in_text_leaves_the_rest() -> None:
    text = "GET 'https://u:p@h/x?key=SECRET' failed: HTTP 500 (see https://h/doc)"
    assert redact_urls(text) == "GET 'https://***@h/x?key=***' failed: HTTP 500 (see https://h/doc)"
    header = "[(b'Location', b'/moved?page=2&Access_Token=T0K#x'), (b'X', b'a=b&c')]"
    assert (
        redact_urls(header)
        == "[(b'Location', b'/moved?page=2&Access_Token=***#x'), (b'X', b'a=b&c')]"
    )


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGESTBOT_")}
    env["DIGESTBOT_AUTO_EMBEDDINGS"] = "0"
    return subprocess.run(
        [sys.executable, "-m", "digestbot", "--config", str(tmp_path / "config.yaml"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_output_log_or_alert_shows_a_feed_urls_credentials(
    tmp_path: Path, server: FeedServer
) -> None:
    host = server.base_url.removeprefix("http://")
    server.routes["/down?token=TOKSECRET1&page=2"] = Route(script=[Answer(404, b"no")] * 4)
    server.routes["/private?apikey=KEYSECRET3"] = Route(
        script=[Answer(301, headers={"Location": "/moved?Access_Token=TOKSECRET4"})] * 2
    )
    server.routes["/moved?Access_Token=TOKSECRET4"] = Route(body=RSS_FIRST50.read_bytes())
    (tmp_path / "drops").mkdir()
    write_config(
        tmp_path,
        f"""
database_url: sqlite:///data/x.sqlite3
drops: {{path: drops}}
profiles: []
alerts: {{source_failures: 1}}
feeds:
  - name: down
    url: "http://{host}/down?token=TOKSECRET1&page=2"
  - name: private
    url: "http://user:PWSECRET2@{host}/private?apikey=KEYSECRET3"
  - name: broken
    url: "http://[::1/feed?sig=SIGSECRET6&token=TOKSECRET5"
""",
    )
    shown = [
        _run(tmp_path, "--debug", "run", "--once"),
        _run(tmp_path, "--debug", "--log-format", "json", "fetch", "--json"),
        _run(tmp_path, "feeds", "--json"),
        _run(tmp_path, "feeds"),
        _run(tmp_path, "status", "--json"),
    ]
    # fetched with the real URL: the token reached the server, the user and password too
    paths = [seen.path for seen in server.requests]
    assert paths.count("/down?token=TOKSECRET1&page=2") == 2
    assert "/moved?Access_Token=TOKSECRET4" in paths
    private = [s for s in server.requests if s.path.startswith("/private")]
    assert private and private[0].headers["authorization"].startswith("Basic ")
    # what was shown is about these feeds (the failure, the move, the alert)...
    run_log = shown[0].stderr
    assert "alert source-failing" in run_log and "HTTP 404" in run_log
    assert "moved permanently" in run_log and "HTTP Request: GET" in run_log
    feeds = {row["name"]: row for row in json.loads(shown[2].stdout)}
    assert feeds["down"]["url"] == f"http://{host}/down?token=***&page=2"
    assert feeds["private"]["url"] == f"http://***@{host}/private?apikey=***"
    assert feeds["down"]["last_status"] == "failed"
    assert feeds["broken"]["last_error"].startswith("broken: bad URL")
    status = json.loads(shown[4].stdout)
    assert {f["name"] for f in status["feeds"]} == {"down", "private", "broken"}
    # ...and holds none of their secrets
    for result in shown:
        for secret in SECRETS:
            assert secret not in result.stdout, (secret, result.args)
            assert secret not in result.stderr, (secret, result.args)
    # the database holds none of them either: a stored URL is redacted and fingerprinted
    # (a changed URL still resets its validators)
    with sqlite3.connect(tmp_path / "data" / "x.sqlite3") as db:
        stored = dict(db.execute("SELECT name, url FROM feed_state").fetchall())
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    down = f"http://{host}/down?token=TOKSECRET1&page=2"
    digest = hashlib.sha256(down.encode()).hexdigest()
    assert stored["down"] == f"http://{host}/down?token=***&page=2 sha256:{digest}"
    saved = (tmp_path / "data" / "x.sqlite3").read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in saved, secret
