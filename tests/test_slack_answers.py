"""Rendering /papers answers: escaping, the button contract, showing a vote."""

from __future__ import annotations

import json

from digestbot.models import Paper, ScoredPaper
from digestbot.slack_answers import (
    AnswerMemory,
    mark_vote,
    parse_more_button,
    parse_paper_button,
    render_answer,
)

EVIL = Paper(
    title="<!channel> & <script>|pwn",
    abstract="Ping <@U123> & <https://evil.example|click> " + "x" * 400,
    arxiv_id="2401.01234",
)


def test_untrusted_paper_text_is_escaped_and_buttons_follow_the_contract() -> None:
    payload = render_answer(
        text="<!here> results",
        header="Results:",
        papers=[ScoredPaper(paper=EVIL, score=1.0, why="matches <b>")],
        profile="scaling-laws",
        more='{"q": "x", "offset": 5}',
    )
    assert payload["text"] == "&lt;!here&gt; results"
    header, section, actions, more = payload["blocks"]
    assert header["text"]["text"] == "Results:"
    text = section["text"]["text"]
    assert text.startswith(
        "*<https://arxiv.org/abs/2401.01234|&lt;!channel&gt; &amp; &lt;script&gt;¦pwn>*\n"
    )
    assert "`2401.01234` · ▲0 · matches &lt;b&gt;" in text
    assert "Ping &lt;@U123&gt; &amp; &lt;https://evil.example|click&gt;" in text
    assert text.endswith("…") and len(text) < 600
    assert "<!" not in text.replace("<https://arxiv.org", "")
    elements = actions["elements"]
    assert [e["action_id"] for e in elements] == [
        "digestbot_vote_up",
        "digestbot_vote_down",
        "digestbot_share",
    ]
    assert {json.dumps(json.loads(e["value"]), sort_keys=True) for e in elements} == {
        '{"paper": "2401.01234", "profile": "scaling-laws"}'
    }
    assert more["elements"][0]["action_id"] == "digestbot_more"


def test_answers_without_share_or_more() -> None:
    payload = render_answer(text="t", papers=[EVIL], share=False)
    section, actions = payload["blocks"]
    assert section["type"] == "section"
    assert [e["action_id"] for e in actions["elements"]] == [
        "digestbot_vote_up",
        "digestbot_vote_down",
    ]
    assert json.loads(actions["elements"][0]["value"]) == {"paper": "2401.01234", "profile": "@me"}


def test_button_values_from_clients_are_validated() -> None:
    assert parse_paper_button('{"paper": "p1"}').is_personal  # type: ignore[union-attr]
    assert parse_paper_button('{"paper": "p1", "profile": "@me"}').is_personal  # type: ignore[union-attr]
    assert not parse_paper_button('{"paper": "p1", "profile": "a"}').is_personal  # type: ignore[union-attr]
    for bad in ("", "[]", '{"paper": ""}', '{"profile": "a"}', "nope", '{"paper": 5}'):
        assert parse_paper_button(bad) is None, bad
    assert parse_more_button('{"q": "x", "offset": 5}') is not None
    assert parse_more_button('{"q": "x", "offset": -1}') is None


def test_mark_vote_styles_the_choice_and_replaces_the_note() -> None:
    blocks = render_answer(text="t", papers=[EVIL])["blocks"]
    voted = mark_vote(blocks, block_id="digestbot_actions_1", value=1, note="up")
    assert [b["block_id"] for b in voted] == [
        "digestbot_paper_1",
        "digestbot_actions_1",
        "digestbot_actions_1_vote",
    ]
    assert voted[1]["elements"][0]["style"] == "primary"
    again = mark_vote(voted, block_id="digestbot_actions_1", value=-1, note="down")
    assert len(again) == 3 and again[2]["elements"][0]["text"] == "down"
    assert "style" not in again[1]["elements"][0]
    assert again[1]["elements"][1]["style"] == "danger"
    assert "style" not in blocks[1]["elements"][0]  # the input is not changed
    assert mark_vote(blocks, block_id="unknown", value=1, note="x") == blocks


def test_answer_memory_tags_actions_blocks_and_forgets_the_oldest() -> None:
    memory = AnswerMemory(size=2)
    first = memory.remember(render_answer(text="t", papers=[EVIL]))
    tagged = first["blocks"][1]["block_id"]
    assert tagged.startswith("digestbot_actions_1.") and first["blocks"][0]["block_id"] == (
        "digestbot_paper_1"
    )
    recalled = memory.recall(tagged)
    assert recalled is not None and recalled[1] == first["blocks"]
    recalled[1].clear()  # a copy: the memory is not changed through it
    assert memory.recall(tagged) is not None and memory.recall(tagged)[1]  # type: ignore[index]
    memory.remember(render_answer(text="t", papers=[EVIL]))
    memory.remember(render_answer(text="t", papers=[EVIL]))
    assert memory.recall(tagged) is None
    assert memory.recall("digestbot_actions_1") is None


def test_an_unsafe_or_piped_link_from_a_feed_does_not_become_a_slack_link() -> None:
    # a paper without an arXiv id links to its first URL, which a feed supplies as it likes
    scripted = Paper(title="Scripted", abstract="a", urls=("javascript:alert(1)",))
    piped = Paper(title="Piped", abstract="a", urls=("https://example.org/search?q=a|b",))
    payload = render_answer(text="t", papers=[scripted, piped], share=False)
    first, second = (b["text"]["text"] for b in payload["blocks"] if b["type"] == "section")
    assert first.startswith("*Scripted*\n")  # no link at all
    assert "javascript" not in first
    assert second.startswith("*<https://example.org/search?q=a%7Cb|Piped>*\n")


def test_a_long_text_answer_is_split_into_sections_slack_accepts(tmp_path) -> None:
    # /papers profiles with many profiles: one section may hold 3,000 characters at most
    from datetime import UTC, datetime

    from digestbot.config import parse_settings
    from digestbot.slack_commands import PapersCommand
    from digestbot.store import SqlStore

    profiles = [
        {"name": f"topic-{i:02d}", "description": f"Topic {i}: " + "long description " * 10}
        for i in range(30)
    ]
    settings = parse_settings({"profiles": profiles}, env={})
    store = SqlStore.open(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        answer = PapersCommand(
            settings,
            store,
            now=lambda: datetime(2026, 11, 23, tzinfo=UTC),
            lookup_timezone=lambda _u: None,
        ).answer("profiles", "", user_id="U1", channel_id="C1")
    finally:
        store.close()
    sections = [b["text"]["text"] for b in answer["blocks"] if b["type"] == "section"]
    assert len(sections) > 1 and all(len(s) <= 3000 for s in sections)
    assert len(answer["blocks"]) <= 50
    joined = "\n".join(sections)
    assert all(f"`topic-{i:02d}`" in joined for i in range(30))
    assert len(answer["text"]) <= 3000
