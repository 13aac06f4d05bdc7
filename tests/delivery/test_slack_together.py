"""The Slack app and delivery together: ``/papers subscribe`` and votes on a posted digest.

Real parts only: the app served on 127.0.0.1 and driven with signed requests, the
Slack Web API stand-in taking both the app's calls and ``send_due``'s posts, a
SQLite file shared by both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from digestbot.config import Settings, parse_settings
from digestbot.delivery.service import send_due
from digestbot.delivery.targets import Deliverers
from digestbot.pipeline import rank_profile
from digestbot.ranking import rank
from digestbot.store import SqlStore
from digestbot.store.feedback import load_feedback
from digestbot.store.ledger import load_history
from tests.delivery.helpers import add_papers, make_paper, slack_deliverer
from tests.slack_api import SlackApi
from tests.slack_served import SECRET, Running, answer, serving_slack_app

DAY1 = datetime(2026, 11, 23, 8, 5, tzinfo=UTC)  # after the profile's 08:00 UTC
DAY2 = DAY1 + timedelta(days=1)


def settings_for(api: SlackApi) -> Settings:
    profile = {
        "name": "attn",
        "keywords": ["linear attention"],
        "deliver": [{"slack": {"channel": "C0CONF"}}],
        "schedule": {"cron": "0 8 * * *", "timezone": "UTC"},
    }
    return parse_settings(
        {
            "slack": {"bot_token": api.token, "base_url": api.url, "signing_secret": SECRET},
            "profiles": [profile],
        },
        env={},
    )


@pytest.fixture
def served(store: SqlStore, slack_api: SlackApi) -> Iterator[Running]:
    add_papers(store, [make_paper(i) for i in range(1, 4)], now=DAY1 - timedelta(hours=1))
    with serving_slack_app(settings_for(slack_api), store, slack_api, now=lambda: DAY1) as app:
        yield app


def deliverers(api: SlackApi) -> Deliverers:
    return Deliverers(slack=slack_deliverer(api))


def said(running: Running, count: int) -> str:
    return str(answer(running, count)["blocks"][0]["text"]["text"])


def test_a_subscribed_channel_gets_the_digest_until_it_unsubscribes(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(slack_api)
    assert served.command("subscribe attn", channel="C0SUB")[0] == 200
    assert "will get the *attn*" in said(served, 1)
    served.command("subscribe attn", channel="C0CONF")  # also in the config: one digest
    said(served, 2)

    report = send_due(settings, store, now=DAY1, deliverers=deliverers(slack_api))
    assert sorted((o.destination, o.status, o.papers) for o in report.outcomes) == [
        ("slack:C0CONF", "sent", 3),
        ("slack:C0SUB", "sent", 3),
    ]
    assert len(slack_api.posted("C0SUB")) == 1 and len(slack_api.posted("C0CONF")) == 1
    again = send_due(
        settings, store, now=DAY1 + timedelta(hours=1), deliverers=deliverers(slack_api)
    )
    assert {o.status for o in again.outcomes} == {"already-sent"}

    served.command("unsubscribe attn", channel="C0SUB")
    assert said(served, 3) == "This channel will no longer get *attn*."
    add_papers(store, [make_paper(4)], now=DAY2 - timedelta(hours=1))
    report = send_due(settings, store, now=DAY2, deliverers=deliverers(slack_api))
    assert [(o.destination, o.status, o.papers) for o in report.outcomes] == [
        ("slack:C0CONF", "sent", 1)
    ]
    assert len(slack_api.posted("C0SUB")) == 1  # nothing more after the unsubscribe
    assert len(slack_api.posted("C0CONF")) == 2
    rows = {(r.destination, r.digest_date.isoformat()) for r in load_history(store)}
    assert ("slack:C0SUB", "2026-11-24") not in rows


def vote_buttons(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(block id, actions block) of each paper in a digest message as Slack has it."""
    return [(b["block_id"], b) for b in message["blocks"] if b["type"] == "actions"]


def test_a_vote_on_a_posted_digest_is_feedback_for_its_profile(
    served: Running, store: SqlStore, slack_api: SlackApi
) -> None:
    settings = settings_for(slack_api)
    send_due(settings, store, now=DAY1, deliverers=deliverers(slack_api))
    [posted] = slack_api.posted("C0CONF")
    message = {k: v for k, v in posted.items() if k not in ("channel", "received")}
    block_id, actions = vote_buttons(message)[0]
    down = next(e for e in actions["elements"] if e["action_id"] == "digestbot_vote_down")
    paper_id = json.loads(down["value"])["paper"]
    assert json.loads(down["value"]) == {"paper": paper_id, "profile": "attn"}

    status, _ = served.click(
        "digestbot_vote_down", down["value"], message=message, block_id=block_id, channel="C0CONF"
    )
    assert status == 200
    update = slack_api.wait_for("chat.update")[0].body
    assert (update["channel"], update["ts"]) == ("C0CONF", posted["ts"])
    redrawn = next(b for b in update["blocks"] if b.get("block_id") == block_id)
    assert [e.get("style") for e in redrawn["elements"]] == [None, "danger"]
    votes = load_feedback(store, subject_kind="profile", subject="attn")
    assert [(v.paper_id, v.value, v.source) for v in votes] == [(paper_id, -1, "slack")]

    # The profile's next ranking learns from it: the 👎 paper drops to the bottom (score 0),
    # where a ranking without the vote still has it among the best.
    profile = settings.profile("attn")
    without_vote = [s.paper.id for s in rank(store.load_papers(), profile, now=DAY2)]
    assert without_vote.index(paper_id) < 10
    after = rank_profile(store, profile, now=DAY2)
    voted = next(s for s in after if s.paper.id == paper_id)
    assert voted.score == 0
    assert [s.paper.id for s in after].index(paper_id) > without_vote.index(paper_id)
