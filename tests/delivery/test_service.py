"""send_due end to end: the ledger against a real SQLite file, Slack stand-in, aiosmtpd."""

from __future__ import annotations

import json
import threading
from datetime import date, timedelta
from pathlib import Path

import trustme

from digestbot.delivery.service import DeliveryOutcome, send_due
from digestbot.delivery.targets import Deliverers, build_deliverers
from digestbot.store import SqlStore
from digestbot.store.ledger import claim_deliveries, count_sent, load_history
from tests.conftest import NOW
from tests.delivery.helpers import (
    add_papers,
    email_deliverer,
    make_paper,
    settings_for,
    slack_deliverer,
)
from tests.slack_api import SlackApi
from tests.smtp_server import SmtpServer, free_port

DAY = timedelta(days=1)
SLACK = {"slack": {"channel": "#papers"}}


def statuses(outcomes: list[DeliveryOutcome]) -> list[tuple[str, str]]:
    return [(o.destination, o.status) for o in outcomes]


def slack_paper_ids(api: SlackApi) -> list[str]:
    ids = []
    for message in api.posted():
        for block in message["blocks"]:
            if str(block.get("block_id", "")).startswith("paper:"):
                ids.append(block["block_id"].split(":", 1)[1])
    return ids


def test_file_destination_sends_once_a_day(store: SqlStore, tmp_path: Path) -> None:
    settings = settings_for(deliver=[{"file": {"path": str(tmp_path / "out")}}])
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW)
    first = send_due(settings, store, now=NOW)
    key = f"file:{(tmp_path / 'out').resolve()}:markdown"
    assert statuses(first.outcomes) == [(key, "sent")] and first.ok
    assert first.outcomes[0].papers == 3
    written = tmp_path / "out" / "attn-2026-11-23.md"
    assert written.read_text().startswith("# 3 new papers for attn")
    second = send_due(settings, store, now=NOW + timedelta(hours=3))
    assert statuses(second.outcomes) == [(key, "already-sent")] and second.ok
    [row] = load_history(store)
    assert (row.status, row.external_id, len(row.papers)) == ("sent", str(written), 3)
    assert list((tmp_path / "out").iterdir()) == [written]  # no temporary files left


def test_a_profile_named_twice_is_sent_and_reported_once(store: SqlStore, tmp_path: Path) -> None:
    settings = settings_for(deliver=[{"file": {"path": str(tmp_path / "out")}}])
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW)
    report = send_due(settings, store, now=NOW, profiles=["attn", "attn"])
    key = f"file:{(tmp_path / 'out').resolve()}:markdown"
    assert statuses(report.outcomes) == [(key, "sent")]  # not a second "already-sent" line


def test_slack_and_email_second_run_the_same_day_sends_nothing(
    store: SqlStore, slack_api: SlackApi, smtp_server: SmtpServer, deliverers: Deliverers
) -> None:
    settings = settings_for(
        deliver=[SLACK, {"email": {"to": ["alice@example.org", "Bob <bob@example.org>"]}}]
    )
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW)
    first = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert statuses(first.outcomes) == [
        ("slack:#papers", "sent"),
        ("email:alice@example.org", "sent"),
        ("email:bob@example.org", "sent"),
    ]
    second = send_due(settings, store, now=NOW + timedelta(hours=1), deliverers=deliverers)
    assert [o.status for o in second.outcomes] == ["already-sent"] * 3 and second.ok
    assert len(slack_api.posted()) == 1
    assert [len(smtp_server.handler.to(a)) for a in ("alice@example.org", "bob@example.org")] == [
        1,
        1,
    ]
    rows = {r.destination: r for r in load_history(store)}
    assert rows["slack:#papers"].external_id == slack_api.posted()[0]["ts"]
    alice = smtp_server.handler.to("alice@example.org")[0].message
    assert rows["email:alice@example.org"].external_id == alice["Message-ID"]
    assert alice["Subject"] == "3 new papers for attn · Mon 23 Nov"
    assert count_sent(store, destination="slack:#papers") == 3


def test_outage_becomes_a_catch_up_not_a_gap_and_not_a_duplicate(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(i) for i in (1, 2, 3)], now=NOW)
    assert send_due(settings, store, now=NOW, deliverers=deliverers).ok
    assert sorted(slack_paper_ids(slack_api)) == ["2611.00001", "2611.00002", "2611.00003"]

    add_papers(store, [make_paper(i) for i in (4, 5)], now=NOW + DAY)
    slack_api.channel_errors["C0PAPERS"] = "not_in_channel"
    down = send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    [failed] = down.outcomes
    assert not down.ok and failed.status == "failed" and "not_in_channel" in failed.error

    del slack_api.channel_errors["C0PAPERS"]
    add_papers(store, [make_paper(6)], now=NOW + 2 * DAY)
    up = send_due(settings, store, now=NOW + 2 * DAY, deliverers=deliverers)
    assert statuses(up.outcomes) == [("slack:#papers", "sent")] and up.outcomes[0].papers == 3
    ids = slack_paper_ids(slack_api)
    assert len(ids) == len(set(ids)) == 6  # every paper once
    history = {r.digest_date: r for r in load_history(store)}
    assert history[date(2026, 11, 24)].status == "superseded"
    assert "not_in_channel" in (history[date(2026, 11, 24)].error or "")
    assert sorted(p.paper_id for p in history[date(2026, 11, 25)].papers) == [
        "2611.00004",
        "2611.00005",
        "2611.00006",
    ]


def test_smtp_down_then_up_the_failed_digest_goes_out_once(store: SqlStore, ca: trustme.CA) -> None:
    server = SmtpServer(ca, port=free_port())  # not started yet: the port refuses connections
    settings = settings_for(deliver=[{"email": {"to": ["alice@example.org", "bob@example.org"]}}])
    deliverers = Deliverers(email=email_deliverer(server))
    add_papers(store, [make_paper(i) for i in (1, 2)], now=NOW)
    down = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in down.outcomes] == ["failed", "failed"] and not down.ok
    assert "cannot reach the SMTP server" in down.outcomes[0].error
    server.start()
    try:
        up = send_due(settings, store, now=NOW + timedelta(minutes=30), deliverers=deliverers)
        again = send_due(settings, store, now=NOW + timedelta(hours=1), deliverers=deliverers)
        received = list(server.handler.received)
    finally:
        server.stop()
    assert [o.status for o in up.outcomes] == ["sent", "sent"] and up.ok
    assert [o.status for o in again.outcomes] == ["already-sent", "already-sent"]
    assert sorted(r.rcpt_tos[0] for r in received) == ["alice@example.org", "bob@example.org"]
    assert {r.attempts for r in load_history(store)} == {2}


def test_a_bouncing_recipient_blocks_no_one_and_a_retry_skips_who_got_it(
    store: SqlStore, smtp_server: SmtpServer, deliverers: Deliverers
) -> None:
    smtp_server.handler.reject_rcpt["gone@example.org"] = "550 5.1.1 unknown user"
    settings = settings_for(deliver=[{"email": {"to": ["alice@example.org", "gone@example.org"]}}])
    add_papers(store, [make_paper(1)], now=NOW)
    first = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert statuses(first.outcomes) == [
        ("email:alice@example.org", "sent"),
        ("email:gone@example.org", "failed"),
    ]
    assert "550 5.1.1 unknown user" in first.outcomes[1].error
    del smtp_server.handler.reject_rcpt["gone@example.org"]
    second = send_due(settings, store, now=NOW + timedelta(hours=1), deliverers=deliverers)
    assert statuses(second.outcomes) == [
        ("email:alice@example.org", "already-sent"),
        ("email:gone@example.org", "sent"),
    ]
    assert len(smtp_server.handler.to("alice@example.org")) == 1
    assert len(smtp_server.handler.to("gone@example.org")) == 1


def test_a_digest_another_run_is_sending_is_left_alone(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(1)], now=NOW)
    slack_api.channel_errors["C0PAPERS"] = "channel_not_found"
    assert not send_due(settings, store, now=NOW, deliverers=deliverers).ok
    del slack_api.channel_errors["C0PAPERS"]
    [row] = load_history(store)
    assert claim_deliveries(store, [row.pk], token="other", now=NOW, lease=timedelta(hours=1))
    report = send_due(settings, store, now=NOW + timedelta(minutes=5), deliverers=deliverers)
    assert [(o.status, o.detail) for o in report.outcomes] == [
        ("already-sent", "another run is sending this digest")
    ]
    assert slack_api.posted() == []


def test_racing_runs_post_once(store: SqlStore, slack_api: SlackApi, db_url: str) -> None:
    settings = settings_for(deliver=[SLACK])
    add_papers(store, [make_paper(i) for i in (1, 2)], now=NOW)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        own = SqlStore.open(db_url)
        try:
            barrier.wait()
            report = send_due(
                settings, own, now=NOW, deliverers=Deliverers(slack=slack_deliverer(slack_api))
            )
            results.extend(o.status for o in report.outcomes)
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["already-sent"] * 3 + ["sent"]
    assert len(slack_api.posted()) == 1


def test_dry_run_renders_every_destination_and_records_nothing(
    store: SqlStore, slack_api: SlackApi, tmp_path: Path
) -> None:
    settings = settings_for(
        deliver=[
            SLACK,
            {"email": {"to": ["alice@example.org"]}},
            {"file": {"path": str(tmp_path / "out"), "format": "email-html"}},
        ]
    )
    add_papers(store, [make_paper(1)], now=NOW)
    report = send_due(settings, store, now=NOW, dry_run=True)
    assert [o.status for o in report.outcomes] == ["dry-run"] * 3
    slack, email, file = (o.preview for o in report.outcomes)
    assert json.loads(slack)[0]["text"] == "1 new paper for attn · Mon 23 Nov"
    assert email.startswith("Subject: 1 new paper for attn · Mon 23 Nov\n\n1 new paper")
    assert file.startswith("<!DOCTYPE html>")
    assert load_history(store) == [] and slack_api.posted() == []
    assert not (tmp_path / "out").exists()


def test_digest_date_is_the_date_in_the_profile_time_zone(store: SqlStore, tmp_path: Path) -> None:
    settings = settings_for(deliver=[{"file": {"path": str(tmp_path)}}], timezone="Asia/Tokyo")
    add_papers(store, [make_paper(1)], now=NOW)
    send_due(settings, store, now=NOW.replace(hour=20))  # 05:00 next day in Tokyo
    [row] = load_history(store)
    assert row.digest_date == date(2026, 11, 24)
    assert (tmp_path / "attn-2026-11-24.md").is_file()


def test_on_empty_skip_sends_nothing_and_notify_sends_an_empty_digest(
    store: SqlStore, slack_api: SlackApi
) -> None:
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    skip = send_due(settings_for(deliver=[SLACK]), store, now=NOW, deliverers=deliverers)
    assert statuses(skip.outcomes) == [("slack:#papers", "nothing-new")]
    assert slack_api.posted() == []
    notify = settings_for(deliver=[SLACK], on_empty="notify")
    sent = send_due(notify, store, now=NOW + DAY, deliverers=deliverers)
    assert statuses(sent.outcomes) == [("slack:#papers", "sent")]
    assert slack_api.posted()[0]["text"] == "0 new papers for attn · Tue 24 Nov"


def test_a_split_digest_posts_a_thread_and_counts_every_paper(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK], top_k=30)
    add_papers(store, [make_paper(i) for i in range(1, 31)], now=NOW)
    report = send_due(
        settings, store, now=NOW, deliverers=Deliverers(slack=slack_deliverer(slack_api))
    )
    assert report.ok and report.outcomes[0].papers == 30
    posted = slack_api.posted()
    assert len(posted) == 2 and posted[1]["thread_ts"] == posted[0]["ts"]
    assert len(set(slack_paper_ids(slack_api))) == 30
    assert count_sent(store, destination="slack:#papers") == 30
    [row] = load_history(store)
    assert row.progress["parts"] == {"0": posted[0]["ts"], "1": posted[1]["ts"]}


def test_build_deliverers_reaches_slack_and_a_webhook_from_settings(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(
        deliver=[SLACK, {"slack": {"webhook_url": slack_api.webhook_url("T1")}}],
        extra={"slack": {"bot_token": slack_api.token, "base_url": slack_api.url}},
    )
    add_papers(store, [make_paper(1)], now=NOW)
    report = send_due(settings, store, now=NOW, deliverers=build_deliverers(settings))
    assert [o.status for o in report.outcomes] == ["sent", "sent"]
    webhook_label = report.outcomes[1].destination
    assert webhook_label.startswith("slack-webhook:") and "T1" not in webhook_label
    assert {m["channel"] for m in slack_api.posted()} == {"C0PAPERS", "webhook:T1"}


def test_a_slack_channel_without_a_bot_token_fails_clearly(store: SqlStore) -> None:
    settings = settings_for(deliver=[SLACK])
    add_papers(store, [make_paper(1)], now=NOW)
    report = send_due(settings, store, now=NOW, deliverers=build_deliverers(settings))
    [outcome] = report.outcomes
    assert outcome.status == "failed" and "slack.bot_token is not set" in outcome.error


def test_a_crlf_title_in_a_custom_subject_cannot_inject_a_header(
    store: SqlStore, smtp_server: SmtpServer, deliverers: Deliverers, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "email").mkdir(parents=True)
    (templates / "email" / "subject.txt.j2").write_text("Top: {{ digest.papers[0].paper.title }}\n")
    settings = settings_for(
        deliver=[{"email": {"to": ["alice@example.org"]}}],
        extra={"templates_dir": str(templates)},
    )
    evil = make_paper(1, title="Linear attention\r\nBcc: victim@example.net\r\nX-Evil: yes")
    add_papers(store, [evil], now=NOW)
    assert send_due(settings, store, now=NOW, deliverers=deliverers).ok
    [received] = smtp_server.handler.received
    assert received.rcpt_tos == ["alice@example.org"]
    assert received.message["Bcc"] is None and received.message["X-Evil"] is None
    assert (
        received.message["Subject"] == "Top: Linear attention Bcc: victim@example.net X-Evil: yes"
    )


def test_the_digest_ranks_as_rank_does_votes_and_the_ranking_settings_count(
    store: SqlStore, tmp_path: Path
) -> None:
    """The scheduled digest ranked an in-memory index of every paper with default settings:
    a 👎 from the Slack buttons or `digestbot feedback` did not keep a paper out, 👍 and
    the stored embeddings did nothing, and `ranking:` in the config was ignored."""
    from digestbot.store.feedback import record_feedback

    index_dir = tmp_path / "rank-index"
    settings = settings_for(
        deliver=[{"file": {"path": str(tmp_path / "out")}}],
        extra={"ranking": {"index_dir": str(index_dir)}},
    )
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=NOW)
    record_feedback(
        store,
        subject_kind="profile",
        subject="attn",
        paper_id="2611.00002",
        value=-1,
        source="cli",
        now=NOW,
    )
    report = send_due(settings, store, now=NOW)
    assert report.ok and report.outcomes[0].papers == 2
    [row] = load_history(store)
    assert sorted(p.paper_id for p in row.papers) == ["2611.00001", "2611.00003"]
    assert (index_dir / "manifest.json").is_file()  # the configured, persisted index
