"""/papers and the buttons, end to end: the real HTTP server on 127.0.0.1, requests signed
as Slack signs them, and a local stand-in of the Slack Web API and of response_url."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from digestbot.config import load_defaults_data, parse_settings
from digestbot.ingest import ingest_paths, list_drop_files
from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.feedback import load_feedback
from digestbot.store.slack import (
    load_channel_subscriptions,
    load_personal_profile,
    record_subscription,
)
from tests.conftest import NOW
from tests.slack_api import Failure, running_slack_api, sign
from tests.slack_served import SECRET, TS, Running, answer, serving_slack_app


@pytest.fixture
def running(tmp_path: Path, seeds: Path) -> Iterator[Running]:
    data = load_defaults_data()
    data["database_url"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    data["slack"] = {"bot_token": "xoxb-test", "signing_secret": SECRET}
    settings = parse_settings(data, env={})
    store = SqlStore.open(settings.database_url)
    ingest_paths(store, (), files=list_drop_files((seeds,)), now=NOW)
    with running_slack_api() as slack, serving_slack_app(settings, store, slack) as served:
        try:
            yield served
        finally:
            store.close()


_answer = answer


def _all_text(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


def test_help_and_unknown_are_answered_in_the_ack(running: Running) -> None:
    status, body = running.command("")
    assert status == 200
    assert "/papers search" in body and json.loads(body)["response_type"] == "ephemeral"
    status, body = running.command("frobnicate <!channel>")
    assert status == 200
    assert "I don't know `frobnicate`" in body and "/papers search" in body
    assert "<!channel>" not in body


def test_search_answers_five_with_more_then_the_next_page(running: Running) -> None:
    status, body = running.command("search attention")
    assert (status, body) == (200, "")
    answer = _answer(running)
    assert answer["response_type"] == "ephemeral"
    blocks = answer["blocks"]
    sections = [b for b in blocks if b["block_id"].startswith("digestbot_paper_")]
    assert len(sections) == 5
    actions = [b for b in blocks if b["block_id"].startswith("digestbot_actions_")]
    ids = [json.loads(a["elements"][0]["value"])["paper"] for a in actions]
    found = running.store.load_papers(ids=ids)
    assert len(found) == 5
    assert all("attention" in (p.title + p.abstract).lower() for p in found)
    ids = [e["action_id"] for e in actions[0]["elements"]]
    assert ids == ["digestbot_vote_up", "digestbot_vote_down", "digestbot_share"]
    assert json.loads(actions[0]["elements"][0]["value"])["profile"] == "@me"
    more = next(b for b in blocks if b["block_id"] == "digestbot_more")["elements"][0]
    assert json.loads(more["value"]) == {"q": "attention", "offset": 5}

    assert running.click("digestbot_more", more["value"], block_id="digestbot_more")[0] == 200
    page2 = _answer(running, 2)
    assert page2["replace_original"] is True
    assert "(6–10)" in page2["blocks"][0]["text"]["text"]
    first_titles = {s["text"]["text"] for s in sections}
    assert not first_titles & {
        b["text"]["text"] for b in page2["blocks"] if b["block_id"].startswith("digestbot_paper_")
    }


@pytest.mark.parametrize(
    "text", ['"unbalanced AND (', "*", "NEAR(a b", "'; DROP TABLE papers; --", "<!zzqqx> &&"]
)
def test_search_with_hostile_text_is_literal_and_polite(running: Running, text: str) -> None:
    assert running.command(f"search {text}")[0] == 200
    answer = _answer(running)
    shown = answer["blocks"][0]["text"]["text"]
    assert "Sorry" not in shown
    assert "No papers match" in shown or "Give me some words" in shown
    assert "<!zzqqx>" not in shown
    assert running.store.count_papers() == 186


def test_search_terms_echoed_back_are_escaped(running: Running) -> None:
    running.command("search <!channel> vision")
    header = _answer(running)["blocks"][0]["text"]["text"]
    assert header.startswith("Papers matching _&lt;!channel&gt; vision_")


def test_subscribe_today_profiles_unsubscribe(running: Running) -> None:
    running.command("today")
    assert "not subscribed" in _answer(running, 1)["blocks"][0]["text"]["text"]
    running.command("subscribe nosuch")
    assert "don't know the profile `nosuch`" in _answer(running, 2)["blocks"][0]["text"]["text"]
    running.command("subscribe scaling-laws")
    assert "will get the *scaling-laws*" in _answer(running, 3)["blocks"][0]["text"]["text"]
    assert load_channel_subscriptions(running.store, "scaling-laws") == ["C1"]

    running.command("today")
    today = _answer(running, 4)
    assert today["blocks"][0]["text"]["text"] == "Top papers for *scaling-laws*:"
    value = json.loads(today["blocks"][2]["elements"][0]["value"])
    assert value["profile"] == "scaling-laws"
    assert "scal" in today["blocks"][1]["text"]["text"].lower()

    running.command("profiles")
    listing = _answer(running, 5)["blocks"][0]["text"]["text"]
    assert "`scaling-laws` ✅ _this channel_" in listing
    assert "`model-compression` —" in listing

    running.command("unsubscribe")
    assert "from 1 profile(s)" in _answer(running, 6)["blocks"][0]["text"]["text"]
    assert load_channel_subscriptions(running.store, "scaling-laws") == []


def test_today_skips_a_subscription_whose_profile_left_the_config(running: Running) -> None:
    # the channel's first subscription names a profile since removed from the config: it
    # answered "I don't know the profile" though the channel follows a configured one too
    record_subscription(running.store, channel_id="C1", profile="retired", user_id="U1", now=NOW)
    later = NOW + timedelta(minutes=1)
    record_subscription(
        running.store, channel_id="C1", profile="scaling-laws", user_id="U1", now=later
    )
    running.command("today")
    assert _answer(running)["blocks"][0]["text"]["text"] == "Top papers for *scaling-laws*:"


def test_like_answers_similar_papers_without_the_seed(running: Running) -> None:
    seed = running.store.load_papers(search="Barlow Twins")[0]
    running.command(f"like {seed.id}")
    answer = _answer(running)
    papers = [b for b in answer["blocks"] if b["block_id"].startswith("digestbot_paper_")]
    assert 1 <= len(papers) <= 5
    assert seed.id not in _all_text({"blocks": papers})
    running.command("like 9999.99999")
    assert "don't know the paper" in _answer(running, 2)["blocks"][0]["text"]["text"]


def test_follow_unfollow_me_and_time_from_users_info(running: Running) -> None:
    running.command("follow linear attention, Mamba, <script>")
    me = _answer(running)["blocks"][0]["text"]["text"]
    assert "`linear attention`, `Mamba`, `&lt;script&gt;`" in me
    running.command("unfollow mamba, <script>")
    assert "You follow: `linear attention`\n" in _answer(running, 2)["blocks"][0]["text"]["text"]
    assert load_personal_profile(running.store, "U1").terms == ("linear attention",)
    running.command("time 7:05")
    _answer(running, 3)
    assert running.slack.wait_for("users.info")[0].body["user"] == "U1"
    mine = load_personal_profile(running.store, "U1")
    assert (mine.delivery_time, mine.timezone) == ("07:05", "Europe/Berlin")
    running.command("time 25:00")
    assert "HH:MM" in _answer(running, 4)["blocks"][0]["text"]["text"]
    running.command("me")
    assert "*07:05* (Europe/Berlin)" in _answer(running, 5)["blocks"][0]["text"]["text"]
    # in a channel without a subscription, "today" is the person's own profile
    running.command("today", channel="D1")
    today = _answer(running, 6)
    assert today["blocks"][0]["text"]["text"] == "Top papers for you:"
    assert json.loads(today["blocks"][2]["elements"][0]["value"])["profile"] == "@me"
    assert "attention" in today["blocks"][1]["text"]["text"].lower()


def test_follow_takes_a_term_once_whatever_its_case_within_one_command(
    running: Running,
) -> None:
    running.command("follow Mamba, mamba, MAMBA, linear attention")
    me = _answer(running)["blocks"][0]["text"]["text"]
    assert me.startswith("You follow: `Mamba`, `linear attention`\n")
    assert load_personal_profile(running.store, "U1").terms == ("Mamba", "linear attention")


def _digest_message(paper_id: str, profile: str) -> dict[str, Any]:
    """A digest message as the delivery side posts it (the shared button contract)."""
    value = json.dumps({"paper": paper_id, "profile": profile})
    return {
        "type": "message",
        "ts": "1700000000.000100",
        "text": "digest",
        "blocks": [
            {"type": "section", "block_id": "p1", "text": {"type": "mrkdwn", "text": "A paper"}},
            {
                "type": "actions",
                "block_id": "a1",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "digestbot_vote_up",
                        "value": value,
                        "text": {"type": "plain_text", "text": "👍"},
                    },
                    {
                        "type": "button",
                        "action_id": "digestbot_vote_down",
                        "value": value,
                        "text": {"type": "plain_text", "text": "👎"},
                    },
                ],
            },
        ],
    }


def test_vote_on_a_channel_digest_records_profile_feedback_and_updates_it(
    running: Running,
) -> None:
    paper = running.store.load_papers(limit=1)[0]
    message = _digest_message(paper.id, "scaling-laws")
    value = message["blocks"][1]["elements"][0]["value"]
    assert running.click("digestbot_vote_up", value, message=message, block_id="a1")[0] == 200
    update = running.slack.wait_for("chat.update")[0].body
    assert (update["channel"], update["ts"]) == ("C1", "1700000000.000100")
    buttons = update["blocks"][1]["elements"]
    assert buttons[0]["style"] == "primary" and "style" not in buttons[1]
    assert (
        "👍 more like this for *scaling-laws* (<@U1>)" in update["blocks"][2]["elements"][0]["text"]
    )
    votes = load_feedback(running.store, subject_kind="profile", subject="scaling-laws")
    assert [(v.paper_id, v.value, v.source) for v in votes] == [(paper.id, 1, "slack")]

    # changing one's mind replaces the vote and the note
    running.click(
        "digestbot_vote_down", value, message=update | {"ts": message["ts"]}, block_id="a1"
    )
    second = running.slack.wait_for("chat.update", count=2)[1].body
    assert [b["block_id"] for b in second["blocks"]] == ["p1", "a1", "a1_vote"]
    assert second["blocks"][1]["elements"][1]["style"] == "danger"
    votes = load_feedback(running.store, subject_kind="profile", subject="scaling-laws")
    assert [v.value for v in votes] == [-1]


def test_vote_on_an_ephemeral_answer_redraws_that_answer(running: Running) -> None:
    running.command("search attention")
    blocks = _answer(running)["blocks"]
    actions = [b for b in blocks if b["type"] == "actions" and b["block_id"] != "digestbot_more"]
    second = actions[1]
    assert re.fullmatch(r"digestbot_actions_2\.[0-9a-f]{12}", second["block_id"])
    value = second["elements"][0]["value"]
    # Slack sends no "message" for a click on an ephemeral message
    running.click("digestbot_vote_up", value, ephemeral=True, block_id=second["block_id"])
    redrawn = _answer(running, 2)
    assert redrawn["replace_original"] is True
    ids = [b["block_id"] for b in redrawn["blocks"]]
    at = ids.index(second["block_id"])
    assert ids[at + 1] == second["block_id"] + "_vote"
    assert len(ids) == len(blocks) + 1
    assert redrawn["blocks"][at]["elements"][0]["style"] == "primary"
    assert "for your own profile (<@U1>)" in redrawn["blocks"][at + 1]["elements"][0]["text"]
    paper = json.loads(value)["paper"]
    votes = load_feedback(running.store, subject_kind="user", subject="U1")
    assert [(v.paper_id, v.value) for v in votes] == [(paper, 1)]


def test_vote_from_an_ephemeral_answer_goes_to_the_person_and_share_posts(
    running: Running,
) -> None:
    paper = running.store.load_papers(limit=1)[0]
    value = json.dumps({"paper": paper.id, "profile": "@me"})
    running.click("digestbot_vote_down", value, user="U2", ephemeral=True)
    note = _answer(running)
    assert note["replace_original"] is False and "👎 less like this" in note["text"]
    votes = load_feedback(running.store, subject_kind="user", subject="U2")
    assert [(v.paper_id, v.value) for v in votes] == [(paper.id, -1)]

    running.click("digestbot_share", value, ephemeral=True)
    posted = running.slack.wait_for("chat.postMessage")[0].body
    assert posted["channel"] == "C1"
    assert posted["blocks"][0]["text"]["text"] == "<@U1> shared:"
    assert "digestbot_share" not in _all_text(posted)
    assert "Shared to <#C1>" in _answer(running, 2)["text"]


def test_share_where_the_bot_is_not_a_member_says_so(running: Running) -> None:
    running.slack.fail_next("chat.postMessage", Failure(error="not_in_channel"))
    paper = running.store.load_papers(limit=1)[0]
    running.click("digestbot_share", json.dumps({"paper": paper.id, "profile": ""}))
    text = _answer(running)["blocks"][0]["text"]["text"]
    assert "not_in_channel" in text and "/invite" in text


def test_forged_button_values_are_refused_politely(running: Running) -> None:
    running.click("digestbot_vote_up", "not json")
    assert "not one of mine" in _answer(running)["blocks"][0]["text"]["text"]
    running.click("digestbot_vote_up", json.dumps({"paper": "nope", "profile": "x"}))
    assert "unknown paper 'nope'" in _answer(running, 2)["blocks"][0]["text"]["text"]


def test_unsigned_forged_stale_and_replayed_requests_get_401_and_run_nothing(
    running: Running,
) -> None:
    body = running.command_body("subscribe scaling-laws")
    assert running.post(body, headers={})[0] == 401
    forged = sign("not-the-secret", body, TS)
    assert running.post(body, headers=forged)[0] == 401
    tampered = sign(SECRET, body, TS)
    assert (
        running.post(body.replace(b"scaling-laws", b"model-compression"), headers=tampered)[0]
        == 401
    )
    assert running.post(body, ts=TS - 301)[0] == 401
    assert running.post(body, ts=TS + 301)[0] == 401
    assert (
        running.post(body, headers={**sign(SECRET, body, TS), "X-Slack-Request-Timestamp": "12ab"})[
            0
        ]
        == 401
    )
    assert running.slack.requests == []  # nothing ran: no answer, no Slack call
    # the genuine one runs once; the same signed request again is a replay
    genuine = sign(SECRET, body, TS - 100)
    assert running.post(body, headers=genuine)[0] == 200
    _answer(running)
    assert running.post(body, headers=genuine)[0] == 401
    assert len(running.slack.wait_for("respond")) == 1
    assert load_channel_subscriptions(running.store, "scaling-laws") == ["C1"]


def test_healthz_and_unknown_paths(running: Running) -> None:
    base = running.url.rsplit("/slack/events", 1)[0]
    with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
        assert (response.status, response.read()) == (200, b"ok\n")
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{base}/nope", timeout=5)
    assert missing.value.code == 404
    missing.value.close()
    with pytest.raises(urllib.error.HTTPError) as wrong:
        urllib.request.urlopen(f"{base}/slack/events", timeout=5)
    assert wrong.value.code == 405
    wrong.value.close()


def test_an_unreachable_response_url_is_logged_and_the_app_keeps_serving(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    body = running.command_body("search attention").replace(
        urlencode({"x": running.slack.base})[2:].encode(), b"http%3A%2F%2F127.0.0.1%3A9"
    )
    assert b"127.0.0.1%3A9%2Frespond" in body
    assert running.post(body)[0] == 200
    running.command("search vision")
    assert "vision" in _answer(running)["blocks"][0]["text"]["text"]
    deadline = time.monotonic() + 10
    while not any("cannot answer through response_url" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.02)


def test_votes_on_a_full_digest_message_keep_it_within_50_blocks(running: Running) -> None:
    from datetime import date

    from digestbot.delivery.formats import render_slack_messages
    from digestbot.models import Digest, ScoredPaper

    papers = running.store.load_papers(limit=20)
    digest = Digest(
        profile="scaling-laws",
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=tuple(ScoredPaper(paper=p, score=1.0, why="matches") for p in papers),
    )
    first = render_slack_messages(digest)[0]
    assert len(first.blocks) >= 47  # a digest part is packed up to Slack's 50 blocks
    message: dict[str, Any] = {"type": "message", "ts": "1700000000.000100", "text": first.text}
    message["blocks"] = list(first.blocks)
    actions = [b for b in first.blocks if b["type"] == "actions"][:5]
    for count, block in enumerate(actions, start=1):
        value = block["elements"][0]["value"]
        running.click("digestbot_vote_up", value, message=message, block_id=block["block_id"])
        update = running.slack.wait_for("chat.update", count=count)[count - 1].body
        assert len(update["blocks"]) <= 50
        message = message | {"blocks": update["blocks"]}
        # every vote shows: its button's style, and a note (in the message or to the voter)
        clicked = next(b for b in update["blocks"] if b.get("block_id") == block["block_id"])
        assert clicked["elements"][0]["style"] == "primary"
    votes = load_feedback(running.store, subject_kind="profile", subject="scaling-laws")
    assert len(votes) == 5
    notes = [c.body.get("text", "") for c in running.slack.requests if c.method != "chat.update"]
    notes += [json.dumps(c.body.get("blocks")) for c in running.slack.requests]
    assert sum("more like this" in n for n in notes) >= 5


def test_a_negative_content_length_is_refused_at_once(running: Running) -> None:
    # read(-1) would wait for the client to close: a thread held per such request
    import socket
    from urllib.parse import urlparse

    where = urlparse(running.url)
    with socket.create_connection((where.hostname, where.port), timeout=5) as conn:
        conn.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        )
        reply = conn.recv(100)
    assert reply.startswith(b"HTTP/1.0 400") or reply.startswith(b"HTTP/1.1 400")


def test_a_paper_with_a_runaway_title_keeps_answers_within_slack_section_limits(
    running: Running,
) -> None:
    # a feed's title of 4,000+ characters: Slack refuses a section over 3,000 (invalid_blocks),
    # so every search or today finding that paper failed with "Slack refused my answer"
    title = "Quokka " + "runaway & title words " * 200
    paper = Paper(
        title=title,
        abstract="Quokka study. " + "Abstract words " * 400,
        arxiv_id="2611.99999",
        extra={"link": "https://example.org/paper?" + "a=1&" * 600},
    )
    with running.store.transaction() as conn:
        running.store.upsert_papers(conn, [paper], now=NOW)
    running.command("search quokka")
    blocks = _answer(running)["blocks"]
    sections = [b for b in blocks if b["block_id"].startswith("digestbot_paper_")]
    assert len(sections) == 1
    text = sections[0]["text"]["text"]
    assert len(text) <= 3000  # Slack's limit for a section's text
    head = text.split("\n")[0]
    assert head.startswith("*<https://arxiv.org/abs/2611.99999|Quokka runaway &amp; title")
    assert head.endswith("…>*") and len(head) < 400
    assert "`2611.99999`" in text


def test_a_search_of_many_ampersands_keeps_the_header_within_a_section(running: Running) -> None:
    # each "&" escapes to "&amp;": 16 such terms made a header over Slack's 3,000 characters
    # and Slack refused the answer
    terms = " ".join("attention" + "&" * (40 + i) + "<" * (15 - i) for i in range(16))
    running.command(f"search {terms}")
    blocks = _answer(running)["blocks"]
    header = blocks[0]["text"]["text"]
    assert header.startswith("Papers matching _attention&amp;&amp;")
    assert header.endswith("…_ (1–5):")
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if "text" in b)
    assert len([b for b in blocks if b["block_id"].startswith("digestbot_paper_")]) == 5


def test_the_first_command_after_a_start_asks_slack_nothing_before_its_ack(
    running: Running,
) -> None:
    # Bolt's own authorization called auth.test before the first ack: with the Web API
    # failing (a 503) the person was told to reinstall the app; a slow one timed out the ack
    running.slack.fail_next("auth.test", Failure(status=503, error="service_unavailable"))
    status, body = running.command("me")
    assert (status, body) == (200, "")
    assert "You follow nothing yet" in _answer(running)["blocks"][0]["text"]["text"]
    assert all(not c.path.endswith("/auth.test") for c in running.slack.requests)
