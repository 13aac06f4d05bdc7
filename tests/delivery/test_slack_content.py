"""Slack refuses a digest for its content (``invalid_blocks``, ``msg_too_long``…): it goes
out as plain text, or is settled as ``rejected``; either way the destination gets its
next digest (before: ``failed``, retried with the same papers, failing every day)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from slack_sdk.webhook import WebhookClient

from digestbot.alerts import Alert, Alerter
from digestbot.config import Settings
from digestbot.delivery.outcomes import SendReport
from digestbot.delivery.personal import send_personal_due
from digestbot.delivery.service import send_due
from digestbot.delivery.slack import WebhookDeliverer
from digestbot.delivery.targets import Deliverers, webhook_key
from digestbot.scheduler import Daemon
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.ledger import count_sent, load_history
from digestbot.store.slack import PersonalProfile, upsert_personal_profile
from tests.conftest import NOW, write_config
from tests.delivery.helpers import add_papers, make_paper, settings_for, slack_deliverer
from tests.slack_api import Failure, SlackApi

DAY = timedelta(days=1)
SLACK = {"slack": {"channel": "#papers"}}


def posted_post_calls(api: SlackApi) -> int:
    return sum(1 for c in api.requests if c.method == "chat.postMessage")


def test_blocks_refused_the_digest_goes_out_as_plain_text_once(
    store: SqlStore, slack_api: SlackApi
) -> None:
    slack_api.refuse_blocks = "invalid_blocks"
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(i) for i in (1, 2, 3)], now=NOW)

    report = send_due(settings, store, now=NOW, deliverers=deliverers)

    [outcome] = report.outcomes
    assert report.ok and (outcome.status, outcome.papers) == ("sent", 3)
    assert "plain text" in outcome.detail and "invalid_blocks" in outcome.detail
    [message] = slack_api.posted()
    assert message["blocks"] == []
    assert message["text"].startswith("*3 new papers for attn · Mon 23 Nov*\n")
    for i in (1, 2, 3):
        link = f"<https://arxiv.org/abs/2611.{i:05d}|Linear attention study number {i}>"
        assert link in message["text"]
    payload = message["metadata"]["event_payload"]
    assert payload == {"digest_id": outcome.digest_id, "part": 0, "parts": 1}
    [row] = load_history(store)
    assert (row.status, row.external_id) == ("sent", message["ts"])
    assert row.progress["form"] == "plain" and row.progress["refused"] == "invalid_blocks"
    assert count_sent(store, destination="slack:#papers") == 3

    again = send_due(settings, store, now=NOW + timedelta(hours=2), deliverers=deliverers)
    assert [o.status for o in again.outcomes] == ["already-sent"]
    assert len(slack_api.posted()) == 1

    # the next day's digest carries the new papers only, and is formatted again
    slack_api.refuse_blocks = ""
    add_papers(store, [make_paper(4)], now=NOW + DAY)
    tomorrow = send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    assert [(o.status, o.papers, o.detail) for o in tomorrow.outcomes] == [("sent", 1, "")]
    assert slack_api.posted()[-1]["blocks"]


def test_a_split_digest_refused_midway_goes_on_as_plain_text_in_its_thread(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK], top_k=30)
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(i) for i in range(1, 31)], now=NOW)
    slack_api.refuse_blocks_with = "paper:2611.00001"  # in the reply (papers by upvotes)

    report = send_due(settings, store, now=NOW, deliverers=deliverers)

    [outcome] = report.outcomes
    assert (outcome.status, outcome.papers) == ("sent", 30)
    parent, reply = slack_api.posted()
    assert parent["blocks"] and reply["blocks"] == []
    assert reply["thread_ts"] == parent["ts"]
    assert "<https://arxiv.org/abs/2611.00001|Linear attention study number 1>" in reply["text"]
    assert "2611.00001" not in str(parent["blocks"])
    assert count_sent(store, destination="slack:#papers") == 30
    [row] = load_history(store)
    assert row.progress["form"] == "plain"


def test_refused_even_as_plain_text_is_rejected_not_retried_and_tomorrow_goes_out(
    store: SqlStore, slack_api: SlackApi
) -> None:
    slack_api.refuse_posts = "msg_too_long"
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(i) for i in (1, 2, 3)], now=NOW)

    report = send_due(settings, store, now=NOW, deliverers=deliverers)
    [outcome] = report.outcomes
    assert outcome.status == "rejected" and "msg_too_long" in outcome.error
    assert posted_post_calls(slack_api) == 2  # formatted, then plain: no third try
    [row] = load_history(store)
    assert row.status == "rejected" and "msg_too_long" in (row.error or "")
    assert count_sent(store, destination="slack:#papers") == 0

    # a second run the same day does not post again
    again = send_due(settings, store, now=NOW + timedelta(hours=3), deliverers=deliverers)
    assert [o.status for o in again.outcomes] == ["rejected"]
    assert posted_post_calls(slack_api) == 2

    # the next day Slack takes it: the new paper and the rejected ones (one more chance)
    slack_api.refuse_posts = ""
    add_papers(store, [make_paper(4)], now=NOW + DAY)
    tomorrow = send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    assert [(o.status, o.papers) for o in tomorrow.outcomes] == [("sent", 4)]
    assert count_sent(store, destination="slack:#papers") == 4


def test_a_paper_in_two_rejected_digests_no_longer_blocks_the_destination(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    slack_api.refuse_posts = "msg_too_long"
    add_papers(store, [make_paper(1)], now=NOW)
    day1 = send_due(settings, store, now=NOW, deliverers=deliverers)
    add_papers(store, [make_paper(2)], now=NOW + DAY)
    day2 = send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    assert [o.status for o in (*day1.outcomes, *day2.outcomes)] == ["rejected", "rejected"]
    assert [o.papers for o in (*day1.outcomes, *day2.outcomes)] == [1, 2]  # 1 rolled in

    slack_api.refuse_posts = ""
    add_papers(store, [make_paper(3)], now=NOW + 2 * DAY)
    day3 = send_due(settings, store, now=NOW + 2 * DAY, deliverers=deliverers)
    assert [(o.status, o.papers) for o in day3.outcomes] == [("sent", 2)]
    text = " ".join(str(b) for b in slack_api.posted()[-1]["blocks"])
    assert "2611.00002" in text and "2611.00003" in text and "2611.00001" not in text
    statuses = [r.status for r in sorted(load_history(store), key=lambda r: r.digest_date)]
    assert statuses == ["rejected", "rejected", "sent"]


def test_a_transient_error_on_the_plain_text_fails_and_is_retried(
    store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api, max_attempts=1))
    add_papers(store, [make_paper(1)], now=NOW)
    slack_api.fail_next("chat.postMessage", Failure(error="invalid_blocks"))  # formatted
    slack_api.fail_next("chat.postMessage", Failure(error="service_unavailable"))  # plain

    first = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [o.status for o in first.outcomes] == ["failed"]
    assert load_history(store)[0].status == "failed"

    retry = send_due(settings, store, now=NOW + timedelta(hours=1), deliverers=deliverers)
    assert [o.status for o in retry.outcomes] == ["sent"]
    assert len(slack_api.posted()) == 1


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> None:
        self.alerts.append(alert)


def test_the_daemon_alerts_once_naming_the_destination_and_slacks_error(
    store: SqlStore, slack_api: SlackApi, tmp_path: Path
) -> None:
    settings = settings_for(deliver=[SLACK], extra={"drops": {"path": str(tmp_path)}})
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(i) for i in (1, 2)], now=NOW)
    slack_api.refuse_posts = "msg_too_long"
    notes = Recorder()

    def send(
        settings: Settings, store: SqlStore, *, now: datetime, as_of: datetime, profiles: Any
    ) -> SendReport:
        return send_due(
            settings, store, now=now, as_of=as_of, profiles=profiles, deliverers=deliverers
        )

    for minutes in (0, 30):  # the run, then a restart within the grace
        daemon = Daemon(
            settings,
            store,
            send=send,
            alerter=Alerter(store, notes),
            clock=lambda m=minutes: NOW + timedelta(minutes=m),  # type: ignore[misc]
        )
        # run --once exits 1, as send does; the restart finds it settled, reported: exit 0
        assert daemon.run_once() is (minutes != 0)
        assert daemon._retries == {}  # settled: not retried
    [alert] = notes.alerts
    assert (alert.kind, alert.profile, alert.destination) == (
        "digest-rejected",
        "attn",
        "slack:#papers",
    )
    assert "msg_too_long" in alert.message and "slack:#papers" in alert.message
    assert posted_post_calls(slack_api) == 2


def test_a_rejected_personal_digest_is_not_tried_again_every_minute(
    store: SqlStore, slack_api: SlackApi
) -> None:
    add_papers(store, [make_paper(i) for i in (1, 2)], now=NOW)
    person = PersonalProfile(
        user_id="U1", terms=("linear attention",), delivery_time="08:00", timezone="UTC"
    )
    upsert_personal_profile(store, person, now=NOW)
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    slack_api.refuse_posts = "msg_too_long"
    due = NOW.replace(hour=8, minute=0)
    first = send_personal_due(settings, store, now=due, deliverers=deliverers)
    assert [(o.destination, o.status) for o in first.outcomes] == [("slack:U1", "rejected")]
    later = send_personal_due(
        settings, store, now=due + timedelta(minutes=20), deliverers=deliverers
    )
    assert later.outcomes == [] and posted_post_calls(slack_api) == 2


def test_status_shows_a_rejected_digest_and_one_sent_as_plain_text(
    store: SqlStore, slack_api: SlackApi, db_url: str, cli: Any, tmp_path: Path
) -> None:
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(1)], now=NOW)
    slack_api.refuse_blocks = "invalid_blocks"
    assert [
        o.status for o in send_due(settings, store, now=NOW, deliverers=deliverers).outcomes
    ] == ["sent"]
    [last] = build_status(settings, store, now=NOW)["deliveries"]
    assert last["status"] == "sent"
    assert last["note"] == (
        "sent as plain text: Slack refused the formatted digest (invalid_blocks)"
    )

    slack_api.refuse_posts = "msg_too_long"
    add_papers(store, [make_paper(2)], now=NOW + DAY)
    send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    report = build_status(settings, store, now=NOW + DAY)
    [rejected] = report["rejected_digests"]
    assert (rejected["destination"], rejected["digest_date"]) == ("slack:#papers", "2026-11-24")
    assert "msg_too_long" in rejected["error"]
    assert report["open_digests"] == [] and report["deliveries"][0]["status"] == "rejected"

    config = write_config(
        tmp_path,
        f"database_url: {db_url}\nprofiles:\n  - name: attn\n    keywords: [linear attention]\n"
        "    deliver:\n      - slack: {channel: '#papers'}\n",
    )
    text = cli("--config", str(config), "--now", (NOW + DAY).isoformat(), "status").stdout
    assert (
        "rejected for their content by Slack or the mail server (not retried; the next "
        "digest goes out as usual):"
    ) in text
    assert "  2026-11-24 attn -> slack:#papers: Slack refused the digest" in text
    history = cli("--config", str(config), "history").stdout.splitlines()
    assert history[0].startswith("2026-11-24  rejected")
    assert history[1].startswith("2026-11-23  sent")
    assert history[1].endswith("(as plain text: Slack refused the blocks, invalid_blocks)")


def test_an_incoming_webhook_refusing_blocks_gets_plain_text_and_then_is_rejected(
    store: SqlStore, slack_api: SlackApi
) -> None:
    url = slack_api.webhook_url("T1")
    settings = settings_for(deliver=[{"slack": {"webhook_url": url}}])
    key = webhook_key(url)
    hook = WebhookDeliverer(WebhookClient(url), label=key, min_interval=0, backoff=0)
    deliverers = Deliverers(webhooks={key: hook})
    add_papers(store, [make_paper(1)], now=NOW)
    slack_api.refuse_blocks = "invalid_blocks"  # a webhook answers 400 invalid_blocks

    first = send_due(settings, store, now=NOW, deliverers=deliverers)
    assert [(o.status, o.papers) for o in first.outcomes] == [("sent", 1)]
    [message] = slack_api.posted("webhook:T1")
    assert message["blocks"] == [] and "Linear attention study number 1" in message["text"]

    slack_api.refuse_posts = "invalid_payload"
    add_papers(store, [make_paper(2)], now=NOW + DAY)
    second = send_due(settings, store, now=NOW + DAY, deliverers=deliverers)
    assert [o.status for o in second.outcomes] == ["rejected"]
    assert "invalid_payload" in second.outcomes[0].error
    statuses = [r.status for r in sorted(load_history(store), key=lambda r: r.digest_date)]
    assert statuses == ["sent", "rejected"]


def test_a_feed_link_full_of_ampersands_does_not_fail_the_digest_every_day(
    store: SqlStore, slack_api: SlackApi
) -> None:
    """A 1,982-character link (within the 2,000 kept) with 490 ``&`` is 3,942 characters
    once escaped for mrkdwn: its line did not fit a Slack section (3,000), the digest failed
    to render on every run and the paper rolled into every next digest."""
    url = "https://example.org/r?" + "&x=1" * 490
    settings = settings_for(deliver=[SLACK])
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    add_papers(store, [make_paper(1, arxiv_id=None, urls=(url,))], now=NOW)

    report = send_due(settings, store, now=NOW, deliverers=deliverers)

    assert [(o.status, o.papers) for o in report.outcomes] == [("sent", 1)]
    [message] = slack_api.posted()
    sections = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert all(len(line) <= 3000 for text in sections for line in text.splitlines())
    assert "*Linear attention study number 1*" in sections[0]  # the title, without the link
