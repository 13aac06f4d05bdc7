"""SlackDeliverer / WebhookDeliverer against the local Slack Web API stand-in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from digestbot.delivery.formats import SlackMessage, render_slack_messages
from digestbot.delivery.slack import EVENT_TYPE, WebhookDeliverer
from digestbot.errors import DeliveryError
from digestbot.models import Digest, ScoredPaper
from tests.conftest import NOW
from tests.delivery.helpers import make_paper, slack_deliverer
from tests.slack_api import Failure, SlackApi


def messages(n_papers: int) -> list[SlackMessage]:
    digest = Digest(
        profile="attn",
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=tuple(
            ScoredPaper(paper=make_paper(i), score=1.0, why="matches attention")
            for i in range(1, n_papers + 1)
        ),
    )
    return render_slack_messages(digest)


class Recorder:
    def __init__(self) -> None:
        self.parts: list[tuple[int, dict[str, Any]]] = []

    def __call__(self, index: int, state: dict[str, Any]) -> None:
        self.parts.append((index, {**state, "parts": dict(state["parts"])}))


def test_posts_parent_then_thread_replies_with_metadata_one_per_second(
    slack_api: SlackApi,
) -> None:
    parts = messages(20)
    assert len(parts) == 2
    deliverer = slack_deliverer(slack_api, min_interval=1.0)
    record = Recorder()
    ts = deliverer.post_digest(
        "#papers", parts, digest_id="d1", progress={}, maybe_posted=False, on_part=record
    )
    posted = slack_api.posted("C0PAPERS")
    assert posted[0]["ts"] == ts
    assert "thread_ts" not in posted[0] and posted[1]["thread_ts"] == ts
    assert [m["metadata"] for m in posted] == [
        {"event_type": EVENT_TYPE, "event_payload": {"digest_id": "d1", "part": 0, "parts": 2}},
        {"event_type": EVENT_TYPE, "event_payload": {"digest_id": "d1", "part": 1, "parts": 2}},
    ]
    assert posted[1]["received"] - posted[0]["received"] >= 0.95
    assert [i for i, _ in record.parts] == [0, 1]
    assert record.parts[-1][1]["channel"] == "C0PAPERS"
    assert record.parts[-1][1]["parts"] == {"0": ts, "1": posted[1]["ts"]}


def test_429_waits_for_retry_after_then_posts_once(slack_api: SlackApi) -> None:
    slack_api.fail_next("chat.postMessage", Failure(status=429, error="ratelimited", retry_after=0))
    deliverer = slack_deliverer(slack_api)
    deliverer.post_digest(
        "C0PAPERS", messages(2), digest_id="d2", progress={}, maybe_posted=False, on_part=Recorder()
    )
    assert slack_api.calls.count("chat.postMessage") == 2
    assert len(slack_api.posted("C0PAPERS")) == 1


@pytest.mark.parametrize(
    "error", ["channel_not_found", "not_in_channel", "invalid_auth", "account_inactive"]
)
def test_permanent_errors_fail_at_once_with_the_reason(slack_api: SlackApi, error: str) -> None:
    slack_api.channel_errors["C0GONE"] = error
    deliverer = slack_deliverer(slack_api)
    with pytest.raises(DeliveryError) as info:
        deliverer.post_digest(
            "C0GONE",
            messages(1),
            digest_id="d3",
            progress={},
            maybe_posted=False,
            on_part=Recorder(),
        )
    assert info.value.reason == error and info.value.permanent
    assert error in str(info.value) and "slack:C0GONE" in str(info.value)
    assert slack_api.calls.count("chat.postMessage") == 1


def test_wrong_token_is_invalid_auth_and_the_token_is_not_in_the_error(slack_api: SlackApi) -> None:
    client = WebClient(token="xoxb-wrong-secret", base_url=slack_api.url)
    from digestbot.delivery.slack import SlackDeliverer

    deliverer = SlackDeliverer(client, min_interval=0, backoff=0)
    with pytest.raises(DeliveryError) as info:
        deliverer.post_digest(
            "C0PAPERS",
            messages(1),
            digest_id="d",
            progress={},
            maybe_posted=False,
            on_part=Recorder(),
        )
    assert info.value.reason == "invalid_auth"
    assert "xoxb-wrong-secret" not in str(info.value)


def test_transient_errors_are_retried_with_a_bound(slack_api: SlackApi) -> None:
    slack_api.fail_next("chat.postMessage", Failure(error="internal_error"), times=2)
    deliverer = slack_deliverer(slack_api)
    deliverer.post_digest(
        "C0PAPERS", messages(1), digest_id="d4", progress={}, maybe_posted=False, on_part=Recorder()
    )
    assert len(slack_api.posted("C0PAPERS")) == 1
    slack_api.fail_next(
        "chat.postMessage", Failure(status=503, error="service_unavailable"), times=3
    )
    with pytest.raises(DeliveryError, match="after 3 attempts") as info:
        deliverer.post_digest(
            "C0PAPERS",
            messages(1),
            digest_id="d5",
            progress={},
            maybe_posted=False,
            on_part=Recorder(),
        )
    assert not info.value.permanent
    assert len(slack_api.posted("C0PAPERS")) == 1


def test_a_retry_finds_parts_already_posted_and_does_not_repost(slack_api: SlackApi) -> None:
    parts = messages(20)
    deliverer = slack_deliverer(slack_api)
    first = Recorder()
    deliverer.post_digest(
        "C0PAPERS", parts, digest_id="d6", progress={}, maybe_posted=False, on_part=first
    )
    assert len(slack_api.posted()) == 2
    again = Recorder()  # as if the ledger had lost both posts
    ts = deliverer.post_digest(
        "C0PAPERS", parts, digest_id="d6", progress={}, maybe_posted=True, on_part=again
    )
    assert len(slack_api.posted()) == 2
    assert ts == slack_api.posted()[0]["ts"]
    assert [i for i, _ in again.parts] == [0, 1]
    assert "conversations.history" in slack_api.calls
    assert "conversations.replies" in slack_api.calls


def test_a_retry_hours_later_in_a_busy_channel_still_finds_the_parent(
    slack_api: SlackApi,
) -> None:
    # a run died after posting; by its retry the channel has 450 newer messages: more than
    # one page of history (200), so the look pages back, to the digest's making at most
    parts = messages(20)
    deliverer = slack_deliverer(slack_api)
    made = datetime.now(UTC) - timedelta(hours=3)
    deliverer.post_digest(
        "C0PAPERS", parts, digest_id="d11", progress={}, maybe_posted=False, on_part=Recorder()
    )
    chatter = WebClient(token=slack_api.token, base_url=slack_api.url)
    for i in range(450):
        chatter.chat_postMessage(channel="C0PAPERS", text=f"chatter {i}")
    again = Recorder()
    ts = deliverer.post_digest(
        "C0PAPERS",
        parts,
        digest_id="d11",
        progress={},
        maybe_posted=True,
        on_part=again,
        made_at=made,
    )
    digest_posts = [m for m in slack_api.posted() if "chatter" not in m["text"]]
    assert len(digest_posts) == 2  # nothing posted again
    assert ts == digest_posts[0]["ts"]
    assert [i for i, _ in again.parts] == [0, 1]
    history_pages = [n for method, n in slack_api.pages_read if method == "conversations.history"]
    assert history_pages == [200, 200, 51]  # 450 chatter, then the parent on the third page


def test_the_look_back_stops_at_the_digests_making(slack_api: SlackApi) -> None:
    # a digest made after every message in the channel: nothing older is read (or matched)
    chatter = WebClient(token=slack_api.token, base_url=slack_api.url)
    for i in range(250):
        chatter.chat_postMessage(channel="C0PAPERS", text=f"chatter {i}")
    deliverer = slack_deliverer(slack_api)
    deliverer.post_digest(
        "C0PAPERS",
        messages(1),
        digest_id="d12",
        progress={},
        maybe_posted=True,
        on_part=Recorder(),
        made_at=datetime.now(UTC) + timedelta(hours=1),
    )
    assert [n for _, n in slack_api.pages_read] == [0]
    assert len(slack_api.posted()) == 251


def test_unreadable_history_means_post_again(slack_api: SlackApi) -> None:
    slack_api.history_error = "missing_scope"
    deliverer = slack_deliverer(slack_api)
    deliverer.post_digest(
        "C0PAPERS", messages(1), digest_id="d7", progress={}, maybe_posted=True, on_part=Recorder()
    )
    assert len(slack_api.posted()) == 1


def test_webhook_posts_parts_in_order_and_fails_permanently_on_no_service(
    slack_api: SlackApi,
) -> None:
    client = WebhookClient(slack_api.webhook_url("T1"))
    hook = WebhookDeliverer(client, label="slack-webhook:x", min_interval=0, backoff=0)
    parts = messages(20)
    hook.post_digest(parts, digest_id="d8", progress={}, on_part=Recorder())
    posted = slack_api.posted("webhook:T1")
    assert [m["text"] for m in posted] == [p.text for p in parts]
    slack_api.fail_next("webhook", Failure(status=404, body="no_service"))
    with pytest.raises(DeliveryError) as info:
        hook.post_digest(messages(1), digest_id="d9", progress={}, on_part=Recorder())
    assert info.value.reason == "no_service" and info.value.permanent


def test_a_time_out_after_slack_accepted_the_post_is_not_posted_twice(
    slack_api: SlackApi,
) -> None:
    from digestbot.delivery.slack import SlackDeliverer

    slack_api.post_delays.append(1.5)
    client = WebClient(token=slack_api.token, base_url=slack_api.url, timeout=1)
    deliverer = SlackDeliverer(client, min_interval=0, backoff=0)
    ts = deliverer.post_digest(
        "C0PAPERS",
        messages(1),
        digest_id="d10",
        progress={},
        maybe_posted=False,
        on_part=Recorder(),
    )
    [posted] = slack_api.posted()
    assert ts == posted["ts"]
    assert slack_api.calls.count("chat.postMessage") == 1
    assert "conversations.history" in slack_api.calls


def test_check_reports_the_bot_or_why_not(slack_api: SlackApi) -> None:
    from digestbot.delivery.slack import SlackDeliverer

    assert slack_deliverer(slack_api).check() == "digestbot on Example"
    wrong = SlackDeliverer(WebClient(token="xoxb-nope", base_url=slack_api.url))
    with pytest.raises(DeliveryError, match="invalid_auth"):
        wrong.check()


def test_a_time_out_posting_a_direct_message_is_not_posted_twice(slack_api: SlackApi) -> None:
    # a personal digest goes to a user id; its history is the DM's (D...), not "U1"'s
    from digestbot.delivery.slack import SlackDeliverer

    slack_api.post_delays.append(1.5)
    client = WebClient(token=slack_api.token, base_url=slack_api.url, timeout=1)
    deliverer = SlackDeliverer(client, min_interval=0, backoff=0)
    ts = deliverer.post_digest(
        "U1", messages(1), digest_id="d11", progress={}, maybe_posted=False, on_part=Recorder()
    )
    [posted] = slack_api.posted()
    assert posted["channel"] == "D1" and ts == posted["ts"]
    assert slack_api.calls.count("chat.postMessage") == 1


def test_a_retry_of_a_direct_message_finds_the_parts_already_posted(slack_api: SlackApi) -> None:
    parts = messages(20)
    deliverer = slack_deliverer(slack_api)
    deliverer.post_digest(
        "U1", parts, digest_id="d12", progress={}, maybe_posted=False, on_part=Recorder()
    )
    again = Recorder()  # a crash before the ledger heard of any part
    deliverer.post_digest(
        "U1", parts, digest_id="d12", progress={}, maybe_posted=True, on_part=again
    )
    assert len(slack_api.posted("D1")) == 2
    assert [i for i, _ in again.parts] == [0, 1]


def test_a_gateway_error_after_slack_accepted_the_post_is_not_posted_twice(
    slack_api: SlackApi,
) -> None:
    # a 5xx may come from a proxy (Enterprise Grid) after Slack took the message
    slack_api.fail_next(
        "chat.postMessage", Failure(status=504, error="gateway_timeout", accepted=True)
    )
    deliverer = slack_deliverer(slack_api)
    ts = deliverer.post_digest(
        "C0PAPERS",
        messages(1),
        digest_id="d13",
        progress={},
        maybe_posted=False,
        on_part=Recorder(),
    )
    [posted] = slack_api.posted("C0PAPERS")
    assert ts == posted["ts"]
    assert slack_api.calls.count("chat.postMessage") == 1


def test_a_time_out_on_a_reply_in_a_channel_named_by_name_is_not_posted_twice(
    slack_api: SlackApi,
) -> None:
    # "#papers": Slack posts by name but reads history by id only (the first answer has it)
    from digestbot.delivery.slack import SlackDeliverer

    slack_api.post_delays.extend([0.0, 1.5])
    client = WebClient(token=slack_api.token, base_url=slack_api.url, timeout=1)
    deliverer = SlackDeliverer(client, min_interval=0, backoff=0)
    deliverer.post_digest(
        "#papers",
        messages(20),
        digest_id="d14",
        progress={},
        maybe_posted=False,
        on_part=Recorder(),
    )
    assert len(slack_api.posted("C0PAPERS")) == 2
    assert slack_api.calls.count("chat.postMessage") == 2
