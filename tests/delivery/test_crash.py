"""Kill the sender with SIGKILL between the send and the ledger write, and after it.

The sender is a real ``digestbot send`` subprocess; the test hook
``DIGESTBOT_TEST_PAUSE=<point>:<dir>`` makes it stop at that point and wait, so the
kill lands exactly there. A restart must lose nothing and send nothing twice,
except what the README promises for email (at-least-once in that window, the
duplicate carrying the same Message-ID).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import trustme

from digestbot.config import load_settings
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import build_deliverers
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent, load_history
from tests.conftest import NOW, REPO
from tests.delivery.helpers import add_papers, make_paper
from tests.slack_api import SlackApi
from tests.smtp_server import PASSWORD, USER, SmtpServer

CONFIG = """\
database_url: sqlite:///{db}
slack: {{bot_token: {token}, base_url: "{slack_url}"}}
email:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, security: starttls, username: {user},
         password: "${{SMTP_PASSWORD}}", timeout: 5}}
  sender: "Paper Digest <digest@example.org>"
profiles:
  - name: attn
    keywords: [linear attention]
    top_k: {top_k}
    deliver:
      - {deliver}
"""
DELIVER = {
    "slack": "slack: {channel: C0PAPERS}",
    "email": "email: {to: [alice@example.org, bob@example.org]}",
    "file": "file: {path: out}",
}


class Sender:
    def __init__(self, tmp_path: Path, ca: trustme.CA, config: Path) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.env = {
            **os.environ,
            "SMTP_PASSWORD": PASSWORD,
            "PYTHONPATH": str(REPO),
        }

    def command(self, now: str) -> list[str]:
        return [sys.executable, "-m", "digestbot", "--config", str(self.config), "--now", now]

    def kill_at(self, point: str, *, now: str) -> None:
        gate = self.tmp_path / f"gate-{point}"
        gate.mkdir()
        env = {**self.env, "DIGESTBOT_TEST_PAUSE": f"{point}:{gate}"}
        proc = subprocess.Popen(
            [*self.command(now), "send"],
            env=env,
            cwd=self.tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not (gate / f"{point}.reached").exists():
            if proc.poll() is not None:
                out, err = proc.communicate()
                pytest.fail(f"the sender ended before {point}: {out!r} {err!r}")
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the sender never reached {point}")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL

    def send(self, *, now: str) -> list[dict[str, Any]]:
        """The restart, in this process (a subprocess costs seconds): the same code path."""
        settings = load_settings(self.config, env=self.env)
        store = SqlStore.open(settings.database_url)
        try:
            report = send_due(
                settings,
                store,
                now=datetime.fromisoformat(now),
                deliverers=build_deliverers(settings),
            )
        finally:
            store.close()
        assert report.ok, report.outcomes
        return [o.as_dict() for o in report.outcomes]


@pytest.fixture
def world(
    tmp_path: Path,
    ca: trustme.CA,
    slack_api: SlackApi,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # OpenSSL's own variable: trust the test CA
    db = tmp_path / "digest.sqlite3"
    store = SqlStore.open(f"sqlite:///{db}")
    add_papers(store, [make_paper(i) for i in range(1, 21)], now=NOW)

    def make(kind: str) -> Sender:
        config = tmp_path / "config.yaml"
        config.write_text(
            CONFIG.format(
                db=db,
                token=slack_api.token,
                slack_url=slack_api.url,
                smtp_port=smtp_server.port,
                user=USER,
                top_k=20,
                deliver=DELIVER[kind],
            )
        )
        return Sender(tmp_path, ca, config)

    yield make, store
    store.close()


START = "2026-11-23T08:00:00+00:00"
AFTER_LEASE = "2026-11-23T08:20:00+00:00"  # the dead run's lease (15 min) has run out


@pytest.mark.parametrize(
    ("point", "posted_before", "status"),
    [
        ("after-send", 1, "sent"),  # parent posted, nothing recorded
        ("after-part-record", 1, "sent"),  # parent posted and recorded, reply not posted
        ("after-record", 2, "already-sent"),  # all posted and recorded
    ],
)
def test_slack_crash_nothing_lost_nothing_twice(
    world: Any, slack_api: SlackApi, point: str, posted_before: int, status: str
) -> None:
    make, store = world
    sender = make("slack")
    sender.kill_at(point, now=START)
    assert len(slack_api.posted()) == posted_before
    if point == "after-send":  # a restart while the dead run's lease holds leaves it alone
        [early] = sender.send(now="2026-11-23T08:05:00+00:00")
        assert (early["status"], early["detail"]) == (
            "already-sent",
            "another run is sending this digest",
        )
        assert len(slack_api.posted()) == 1
    [outcome] = sender.send(now=AFTER_LEASE)
    assert outcome["status"] == status
    posted = slack_api.posted()
    ids = [
        b["block_id"]
        for m in posted
        for b in m["blocks"]
        if b.get("block_id", "").startswith("paper:")
    ]
    assert len(posted) == 2 and len(ids) == len(set(ids)) == 20  # parent + reply, once each
    assert posted[1]["thread_ts"] == posted[0]["ts"]
    [row] = load_history(store)
    assert row.status == "sent" and count_sent(store, destination="slack:C0PAPERS") == 20
    assert sender.send(now=AFTER_LEASE)[0]["status"] == "already-sent"
    assert len(slack_api.posted()) == 2


@pytest.mark.parametrize("point", ["after-send", "after-record"])
def test_email_crash_loses_nothing_and_repeats_at_most_the_message_in_flight(
    world: Any, smtp_server: SmtpServer, point: str
) -> None:
    make, store = world
    sender = make("email")
    sender.kill_at(point, now=START)
    assert [r.rcpt_tos for r in smtp_server.handler.received] == [["alice@example.org"]]
    outcomes = sender.send(now=AFTER_LEASE)
    by_dest = {o["destination"]: o["status"] for o in outcomes}
    alice = smtp_server.handler.to("alice@example.org")
    bob = smtp_server.handler.to("bob@example.org")
    assert len(bob) == 1 and by_dest["email:bob@example.org"] == "sent"
    if point == "after-send":  # the README's promise: at-least-once, same Message-ID
        assert by_dest["email:alice@example.org"] == "sent"
        assert len(alice) == 2
        assert alice[0].message["Message-ID"] == alice[1].message["Message-ID"]
    else:
        assert by_dest["email:alice@example.org"] == "already-sent"
        assert len(alice) == 1
    assert {r.status for r in load_history(store)} == {"sent"}
    sender.send(now=AFTER_LEASE)
    assert len(smtp_server.handler.received) == len(alice) + len(bob)


def test_file_crash_rewrites_the_same_file(world: Any, tmp_path: Path) -> None:
    make, store = world
    sender = make("file")
    sender.kill_at("after-send", now=START)
    written = tmp_path / "out" / "attn-2026-11-23.md"
    before = written.read_text()
    [outcome] = sender.send(now=AFTER_LEASE)
    assert outcome["status"] == "sent"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [written.name]
    assert written.read_text() == before
    [row] = load_history(store)
    assert row.status == "sent" and row.attempts == 2


def test_a_crashed_digest_found_the_next_day_rolls_its_unposted_papers_over(
    world: Any, slack_api: SlackApi
) -> None:
    make, store = world
    sender = make("slack")
    sender.kill_at("after-send", now=START)  # day 1: parent posted (16 papers), reply not
    assert len(slack_api.posted()) == 1
    add_papers(store, [make_paper(21)], now=NOW)
    [outcome] = sender.send(now="2026-11-24T08:00:00+00:00")
    assert (outcome["status"], outcome["papers"]) == ("sent", 5)  # 4 left over + 1 new
    ids = [
        b["block_id"]
        for m in slack_api.posted()
        for b in m["blocks"]
        if b.get("block_id", "").startswith("paper:")
    ]
    assert len(ids) == len(set(ids)) == 21  # every paper once, none lost
    statuses = {r.digest_date.isoformat(): r.status for r in load_history(store)}
    assert statuses == {"2026-11-23": "superseded", "2026-11-24": "sent"}
    assert count_sent(store, destination="slack:C0PAPERS") == 21


def test_a_crash_after_the_plain_text_fallback_was_posted_does_not_post_it_twice(
    world: Any, slack_api: SlackApi
) -> None:
    make, store = world
    sender = make("slack")
    slack_api.refuse_blocks = "invalid_blocks"  # every part goes out as plain text
    sender.kill_at("after-send", now=START)  # the plain parent posted, nothing recorded
    assert [m["blocks"] for m in slack_api.posted()] == [[]]
    [outcome] = sender.send(now=AFTER_LEASE)
    assert outcome["status"] == "sent" and "plain text" in outcome["detail"]
    posted = slack_api.posted()
    assert len(posted) == 2 and posted[1]["thread_ts"] == posted[0]["ts"]  # parent + reply
    numbered = [line for m in posted for line in m["text"].splitlines() if line[:1].isdigit()]
    assert len(numbered) == 20  # every paper once
    [row] = load_history(store)
    assert row.status == "sent" and row.progress["form"] == "plain"
    assert count_sent(store, destination="slack:C0PAPERS") == 20


def test_send_after_a_crash_says_the_digest_is_held_not_already_sent(world: Any, cli) -> None:
    # the dead run's lease holds its digest for 15 minutes: a `send` meanwhile sends nothing
    # and must not say "today's digests were already sent" of a digest that never went out
    make, _store = world
    sender = make("file")
    sender.kill_at("after-send", now=START)
    early = cli(
        "--config",
        str(sender.config),
        "--now",
        "2026-11-23T08:05:00+00:00",
        "send",
        env={"SMTP_PASSWORD": PASSWORD},
    )
    assert early.exit_code == 0, early.output
    assert "already sent" not in early.stdout
    assert "held          attn → file:" in early.stdout
    assert early.stdout.splitlines()[-1] == (
        "nothing sent: 1 digest is held by another run (one that stopped mid-send holds it"
        " until its 15-minute lease ends; the first send after that delivers it)"
    )
    [outcome] = sender.send(now=AFTER_LEASE)
    assert outcome["status"] == "sent"
