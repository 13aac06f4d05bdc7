"""Request signatures: Slack's documented example, forged, stale and replayed requests."""

from __future__ import annotations

from digestbot.slack_guard import ReplayMemory, SlackRequestGuard, build_signature_verifier
from tests.slack_api import sign

# Slack's "Verifying requests from Slack" worked example, verbatim
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
    "channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
    "command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
    "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&"
    "trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def _headers(timestamp: str, signature: str) -> dict[str, list[str]]:
    return {"x-slack-request-timestamp": [timestamp], "x-slack-signature": [signature]}


def test_slacks_documented_example_verifies_on_a_clock_at_its_timestamp() -> None:
    verifier = build_signature_verifier(DOC_SECRET, clock=lambda: float(DOC_TIMESTAMP))
    assert verifier.is_valid(DOC_BODY, str(DOC_TIMESTAMP), DOC_SIGNATURE)
    guard = SlackRequestGuard(DOC_SECRET, clock=lambda: DOC_TIMESTAMP + 299.0)
    assert guard.refusal(DOC_BODY, _headers(str(DOC_TIMESTAMP), DOC_SIGNATURE)) is None
    # our own signer (used by the other tests) agrees with Slack's example
    assert sign(DOC_SECRET, DOC_BODY.encode(), DOC_TIMESTAMP)["X-Slack-Signature"] == DOC_SIGNATURE


def test_the_documented_example_is_refused_when_anything_is_off() -> None:
    def refusal(body: str, ts: str, sig: str, *, now: float = DOC_TIMESTAMP) -> str | None:
        return SlackRequestGuard(DOC_SECRET, clock=lambda: now).refusal(body, _headers(ts, sig))

    ts = str(DOC_TIMESTAMP)
    assert refusal(DOC_BODY, ts, DOC_SIGNATURE, now=DOC_TIMESTAMP + 301) == "stale timestamp"
    assert refusal(DOC_BODY, ts, DOC_SIGNATURE, now=DOC_TIMESTAMP - 301) == "stale timestamp"
    assert refusal(DOC_BODY + "&x=1", ts, DOC_SIGNATURE) == "bad signature"
    assert refusal(DOC_BODY, str(DOC_TIMESTAMP + 1), DOC_SIGNATURE) == "bad signature"
    assert refusal(DOC_BODY, ts, DOC_SIGNATURE.replace("a2", "b2", 1)) == "bad signature"
    assert refusal(DOC_BODY, ts, "") == "no signature"
    assert refusal(DOC_BODY, "", DOC_SIGNATURE) == "no signature"
    assert refusal(DOC_BODY, "１５３１４２０６１８", DOC_SIGNATURE) == "malformed timestamp"
    assert refusal(DOC_BODY, "-1531420618", DOC_SIGNATURE) == "malformed timestamp"


def test_a_replayed_signature_is_refused_and_forgotten_after_the_window() -> None:
    now = [float(DOC_TIMESTAMP)]
    guard = SlackRequestGuard(DOC_SECRET, clock=lambda: now[0])
    headers = _headers(str(DOC_TIMESTAMP), DOC_SIGNATURE)
    assert guard.refusal(DOC_BODY, headers) is None
    assert guard.refusal(DOC_BODY, headers) == "replayed request"
    now[0] += 200
    assert guard.refusal(DOC_BODY, headers) == "replayed request"
    now[0] += 200  # beyond the window the timestamp itself is stale
    assert guard.refusal(DOC_BODY, headers) == "stale timestamp"


def test_replay_memory_is_bounded_and_refuses_when_full_of_fresh_entries() -> None:
    memory = ReplayMemory(window=300, limit=3)
    assert [memory.is_replay(f"s{i}", timestamp=1000, now=1000) for i in range(3)] == [
        False,
        False,
        False,
    ]
    assert memory.is_replay("s9", timestamp=1000, now=1000) is True  # full: refuse, not forget
    assert memory.is_replay("s9", timestamp=1700, now=1700) is False  # old ones expired
    assert memory.is_replay("s0", timestamp=1700, now=1700) is False
