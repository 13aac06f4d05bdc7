"""Personal digests: set up with ``/papers follow`` and ``/papers time`` through the served app,
delivered by direct message at the person's local time (clock controlled), once a day."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from digestbot.alerts import Alerter, LogNotifier
from digestbot.config import Settings, parse_settings
from digestbot.delivery.personal import send_personal_due
from digestbot.delivery.targets import Deliverers
from digestbot.scheduler import Daemon
from digestbot.status import build_status
from digestbot.store import SqlStore
from digestbot.store.feedback import load_feedback
from digestbot.store.ledger import load_history
from tests.delivery.helpers import add_papers, make_paper, slack_deliverer
from tests.slack_api import SlackApi
from tests.slack_served import SECRET, Running, answer, serving_slack_app

# U1 is in Europe/Berlin (users.info of the stand-in): 07:30 there is 06:30 UTC in November
SET_UP = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
DUE = datetime(2026, 11, 23, 6, 30, tzinfo=UTC)


def settings_for(api: SlackApi, **extra: Any) -> Settings:
    return parse_settings(
        {
            "slack": {"bot_token": api.token, "base_url": api.url, "signing_secret": SECRET},
            "profiles": [{"name": "attn", "keywords": ["vision"]}],
            **extra,
        },
        env={},
    )


@pytest.fixture
def served(store: SqlStore, slack_api: SlackApi) -> Iterator[Running]:
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=SET_UP)
    with serving_slack_app(settings_for(slack_api), store, slack_api, now=lambda: SET_UP) as app:
        app.command("follow linear attention", user="U1", channel="D1")
        answer(app, 1)  # the work runs after the ack: one command at a time, as a person types
        app.command("time 07:30", user="U1", channel="D1")
        assert "*07:30* (Europe/Berlin)" in json.dumps(answer(app, 2))
        yield app


def send(api: SlackApi, store: SqlStore, now: datetime) -> list[tuple[str, str, str, int]]:
    report = send_personal_due(
        settings_for(api), store, now=now, deliverers=Deliverers(slack=slack_deliverer(api))
    )
    return [(o.profile, o.destination, o.status, o.papers) for o in report.outcomes]


def test_the_digest_comes_by_dm_at_the_local_time_once_a_day(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    assert send(slack_api, store, DUE - timedelta(minutes=1)) == []
    assert send(slack_api, store, DUE) == [("@U1", "slack:U1", "sent", 3)]
    [dm] = slack_api.posted()
    assert dm["channel"] == "D1"  # chat.postMessage to the user id: the app's DM with them
    assert dm["text"].startswith("3 new papers for you")
    assert [c.body["channel"] for c in slack_api.wait_for("chat.postMessage")] == ["U1"]
    # every minute after, the same day: the ledger says it was sent; nothing is ranked again
    assert send(slack_api, store, DUE + timedelta(minutes=1)) == []
    assert send(slack_api, store, DUE + timedelta(hours=3)) == []
    [row] = load_history(store)
    assert (row.profile, row.destination, row.status) == ("@U1", "slack:U1", "sent")
    assert row.digest_date.isoformat() == "2026-11-23"

    # a 👎 on the DM is the person's own feedback
    message = {k: v for k, v in dm.items() if k not in ("channel", "received")}
    actions = next(b for b in message["blocks"] if b["type"] == "actions")
    down = actions["elements"][1]
    assert json.loads(down["value"])["profile"] == "@U1"
    served.click(
        "digestbot_vote_down",
        down["value"],
        user="U1",
        message=message,
        block_id=actions["block_id"],
        channel="D1",
    )
    slack_api.wait_for("chat.update")
    votes = load_feedback(store, subject_kind="user", subject="U1")
    assert [(v.paper_id, v.value) for v in votes] == [(json.loads(down["value"])["paper"], -1)]


def test_a_new_time_applies_the_next_day_and_the_grace_bounds_catch_ups(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    assert send(slack_api, store, DUE)[0][2] == "sent"
    served.command("time 09:00", user="U1", channel="D1")  # 08:00 UTC
    answer(served, 3)
    add_papers(store, [make_paper(9)], now=DUE + timedelta(hours=1))
    next_day = DUE + timedelta(days=1)
    assert send(slack_api, store, next_day) == []  # 07:30 is no longer the time
    assert send(slack_api, store, next_day + timedelta(minutes=90)) == [
        ("@U1", "slack:U1", "sent", 1)
    ]
    # the day after, 08:00 UTC is due until 14:00 UTC (misfire_grace 6 h), not later
    add_papers(store, [make_paper(10)], now=next_day + timedelta(hours=2))
    day3 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert send(slack_api, store, day3 + timedelta(hours=6, minutes=1)) == []
    assert send(slack_api, store, day3 + timedelta(hours=5, minutes=59)) == [
        ("@U1", "slack:U1", "sent", 1)
    ]


def test_a_failed_dm_is_retried_after_ten_minutes_within_the_grace(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    slack_api.channel_errors["U1"] = "user_not_found"
    [(_, _, status, _)] = send(slack_api, store, DUE)
    assert status == "failed"
    assert send(slack_api, store, DUE + timedelta(minutes=5)) == []  # not every minute
    del slack_api.channel_errors["U1"]
    assert send(slack_api, store, DUE + timedelta(minutes=11)) == [("@U1", "slack:U1", "sent", 3)]
    assert len(slack_api.posted()) == 1


def test_the_daemon_asks_every_minute_run_once_too_and_status_shows_the_next_time(
    served: Running, store: SqlStore, slack_api: SlackApi, tmp_path: Path
) -> None:
    settings = settings_for(slack_api, drops={"path": str(tmp_path)})
    clock = [DUE - timedelta(minutes=1)]
    daemon = Daemon(
        settings,
        store,
        send=None,
        send_personal=send_personal_due,  # real deliverers, built from the settings
        alerter=Alerter(store, LogNotifier()),
        clock=lambda: clock[0],
    )
    assert "personal" in {job.id for job in daemon.build_scheduler().get_jobs()}
    assert daemon.send_personal_digests() is True
    assert slack_api.posted() == []
    clock[0] = DUE + timedelta(seconds=30)
    assert daemon.run_once() is True  # drops (none), attn (not due at 06:30), personal
    assert [m["channel"] for m in slack_api.posted()] == ["D1"]  # the personal one went
    assert daemon.send_personal_digests() is True
    assert len(slack_api.posted()) == 1

    [person] = build_status(settings, store, now=DUE + timedelta(minutes=1))["personal"]
    assert person["user"] == "U1" and person["timezone"] == "Europe/Berlin"
    assert person["next_run_local"] == "2026-11-24T07:30:00+01:00"
    assert person["next_run"] == "2026-11-24T06:30:00+00:00"


def test_the_persons_own_votes_steer_their_next_digest(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    """A 👎 on a personal digest was stored as the person's vote, but their next digest
    (and `/papers today`) ranked without it: the profile looked for the votes of a
    profile of its own name."""
    from digestbot.store.feedback import record_feedback

    record_feedback(
        store,
        subject_kind="user",
        subject="U1",
        paper_id="2611.00002",
        value=-1,
        source="slack",
        now=SET_UP,
    )
    served.command("today", user="U1", channel="D1")
    today = json.dumps(answer(served, 3))
    assert "2611.00001" in today and "2611.00003" in today and "2611.00002" not in today
    assert send(slack_api, store, DUE) == [("@U1", "slack:U1", "sent", 2)]
    [row] = load_history(store)
    assert sorted(p.paper_id for p in row.papers) == ["2611.00001", "2611.00003"]


def test_a_grace_under_a_minute_still_sends_the_personal_digest(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    """The daemon asks once a minute: with ``misfire_grace: 0s`` (or under a minute) a
    personal digest was met only when an ask fell within the grace of its time: never, at 0."""
    settings = settings_for(slack_api, misfire_grace="0s")
    deliverers = Deliverers(slack=slack_deliverer(slack_api))
    report = send_personal_due(
        settings, store, now=DUE + timedelta(seconds=40), deliverers=deliverers
    )
    assert [(o.profile, o.status) for o in report.outcomes] == [("@U1", "sent")]
