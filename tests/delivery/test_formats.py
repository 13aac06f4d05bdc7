"""Rendering: Slack Block Kit (validated, split, escaped), email parts, the digest command."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from digestbot.delivery.formats import (
    MAX_BLOCKS,
    render_email,
    render_format,
    render_slack_messages,
)
from digestbot.errors import RenderError
from digestbot.models import Digest, Paper, ScoredPaper
from tests.conftest import NOW
from tests.delivery.helpers import make_paper

EVIL = "<!channel> *x* <https://evil.example|click> & <script>alert(1)</script>"


def digest_of(papers: list[Paper], *, profile: str = "efficient-attention") -> Digest:
    return Digest(
        profile=profile,
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=tuple(
            ScoredPaper(paper=p, score=10.0 - i / 10, why="matches linear attention")
            for i, p in enumerate(papers)
        ),
        description="Linear attention & friends",
    )


def test_slack_message_has_header_context_papers_votes_and_footer() -> None:
    digest = digest_of([make_paper(i) for i in range(1, 4)])
    [message] = render_slack_messages(digest)
    assert message.text == "3 new papers for efficient-attention · Mon 23 Nov"
    assert message.paper_ids == ("2611.00001", "2611.00002", "2611.00003")
    blocks = list(message.blocks)
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": message.text, "emoji": True},
    }
    assert (
        blocks[1]["elements"][0]["text"] == "Profile *efficient-attention* · 2026-11-23 · 3 papers"
    )
    section = next(b for b in blocks if b.get("block_id") == "paper:2611.00002")
    text = section["text"]["text"]
    assert text.splitlines()[0] == (
        "*<https://arxiv.org/abs/2611.00002|Linear attention study number 2>*"
    )
    assert "Example Lab · Ada Lovelace, Alan Turing" in text
    assert "_matches linear attention_" in text
    assert "<https://github.com/example/repo2|Code>" in text and "▲ 2 upvotes" in text
    actions = next(b for b in blocks if b.get("block_id") == "vote:2611.00002")
    buttons = {e["action_id"]: e for e in actions["elements"]}
    assert set(buttons) == {"digestbot_vote_up", "digestbot_vote_down"}
    for button in buttons.values():
        assert json.loads(button["value"]) == {
            "paper": "2611.00002",
            "profile": "efficient-attention",
        }
    assert blocks[-1]["type"] == "context" and "digestbot" in json.dumps(blocks[-1])
    assert sum(1 for b in blocks if b["type"] == "divider") == 4  # head, 2 between, foot


def test_a_digest_over_slack_limits_is_split_into_thread_parts_without_losing_a_paper() -> None:
    papers = [make_paper(i) for i in range(1, 41)]
    messages = render_slack_messages(digest_of(papers))
    assert len(messages) == 3
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    assert [pid for m in messages for pid in m.paper_ids] == [p.id for p in papers]
    assert messages[0].blocks[0]["type"] == "header"
    assert messages[1].text.endswith("(2/3)") and messages[2].text.endswith("(3/3)")
    assert messages[-1].blocks[-1]["type"] == "context"
    for message in messages:  # no message starts or ends with a stray divider
        assert message.blocks[0]["type"] != "divider"
        assert message.blocks[-1]["type"] != "divider"


def test_an_overlong_section_is_split_not_truncated(tmp_path: Path) -> None:
    # the shipped card cuts runaway fields; a template's own long lines are split at breaks
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "_paper.json.j2").write_text(
        "{% macro paper_blocks(item, profile) -%}\n"
        '{"type": "section", "block_id": {{ ("paper:" ~ item.paper.id) | tojson }}, '
        '"text": {"type": "mrkdwn", "text": {{ ((item.paper.title ~ " ") * 60 ~ "\\n" ~ '
        '(item.paper.organization ~ " ") * 150) | tojson }}}}\n'
        "{%- endmacro %}\n"
    )
    paper = make_paper(1)
    [message] = render_slack_messages(digest_of([paper]), templates_dir=tmp_path)
    sections = [b for b in message.blocks if str(b.get("block_id", "")).startswith("paper:")]
    assert len(sections) == 2
    assert all(len(s["text"]["text"]) <= 3000 for s in sections)
    assert sections[0]["text"]["text"].count(paper.title) == 60
    assert sections[1]["text"]["text"].count("Example Lab") == 150


def test_runaway_feed_text_is_cut_so_the_digest_still_posts() -> None:
    # a feed entry with a 4,000-character title, organisation, author and link: one line
    # over Slack's 3,000 would fail this destination's digest every day (the paper stays
    # in the next one), so the Slack card cuts them; the email keeps the whole title
    title = "Attention " * 400
    paper = make_paper(
        1,
        title=title,
        organization="Lab & " * 500,
        authors=("A. Author " * 300, "B. Author"),
        arxiv_id=None,
        urls=("https://example.org/" + "x" * 3000,),
    )
    [message] = render_slack_messages(digest_of([paper]))
    [section] = [b for b in message.blocks if b.get("block_id") == f"paper:{paper.id}"]
    first, who = section["text"]["text"].split("\n")[:2]
    assert first.startswith("*Attention Attention") and first.endswith("…*")
    assert len(first) <= 302  # 300 characters and the bold marks
    assert "x" * 100 not in first  # a link this long is no link: the title alone
    assert who.startswith("Lab &amp; Lab") and "…" in who and "B. Author" in who
    assert len(section["text"]["text"]) <= 3000
    assert title.strip() in render_email(digest_of([paper])).text


def test_a_template_line_longer_than_a_section_is_an_error_naming_the_block(
    tmp_path: Path,
) -> None:
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "_paper.json.j2").write_text(
        "{% macro paper_blocks(item, profile) -%}\n"
        '{"type": "section", "block_id": {{ ("paper:" ~ item.paper.id) | tojson }}, '
        '"text": {"type": "mrkdwn", "text": {{ (item.paper.title * 400) | tojson }}}}\n'
        "{%- endmacro %}\n"
    )
    with pytest.raises(RenderError, match=r"paper:2611.00001"):
        render_slack_messages(digest_of([make_paper(1)]), templates_dir=tmp_path)


def test_untrusted_title_is_inert_in_slack_html_text_and_markdown() -> None:
    paper = make_paper(7, title=EVIL)
    digest = digest_of([paper])
    [message] = render_slack_messages(digest)
    section = next(b for b in message.blocks if b.get("block_id") == "paper:2611.00007")
    text = section["text"]["text"]
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "<https://evil.example" not in text
    assert "&lt;https://evil.example|click&gt; &amp; &lt;script&gt;" in text
    assert text.count("<") == 2  # only our own two links (paper, code)
    html = render_email(digest).html
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;!channel&gt;" in html and 'href="https://evil.example' not in html
    md = render_format(digest, "markdown")
    assert "<script>" not in md and "<!channel>" not in md


def test_unsafe_links_are_dropped() -> None:
    paper = make_paper(3, arxiv_id=None, urls=("javascript:alert(1)",))
    digest = digest_of([paper])
    html = render_email(digest).html
    assert "javascript:" not in html
    [message] = render_slack_messages(digest)
    assert "javascript:" not in json.dumps(message.blocks)


def test_a_feed_link_cannot_make_links_or_html_of_its_own_in_the_markdown_digest() -> None:
    # a feed's item link is stored as given: in a Markdown digest it once went out raw, so
    # a ')' closed the title's link and began one of its own, and '<'/'>' wrote raw HTML
    closes = "https://x.org/)[click](javascript:alert(1)"
    tag = "https://x.org/a><img src=x onerror=alert(1)>"
    wiki = "https://en.example.org/wiki/Mamba_(snake)"
    papers = [
        make_paper(1, arxiv_id=None, urls=(closes, tag)),
        make_paper(2, arxiv_id=None, urls=(tag, "javascript:alert(2)")),
        make_paper(3, arxiv_id=None, urls=(wiki,)),
    ]
    md = render_format(digest_of(papers), "markdown")
    lines = md.splitlines()
    assert "(javascript:" not in md and "<img" not in md
    assert (
        "## 1. [Linear attention study number 1]"
        "(https://x.org/%29[click]%28javascript:alert%281%29)"
    ) in lines
    assert "## 2. Linear attention study number 2" in lines  # unsafe: the title alone
    # a link with parentheses still leads where it did, written so that they cannot end it
    assert (
        "## 3. [Linear attention study number 3](https://en.example.org/wiki/Mamba_%28snake%29)"
        in lines
    )
    assert "- Code / project: <https://en.example.org/wiki/Mamba_%28snake%29>" in lines
    assert [line for line in lines if line.startswith("- Code")] == [
        "- Code / project: <https://x.org/%29[click]%28javascript:alert%281%29>",
        "- Code / project: <https://en.example.org/wiki/Mamba_%28snake%29>",
    ]


def test_email_is_inlined_single_column_without_images_and_small() -> None:
    papers = [make_paper(i, abstract="attention " * 300) for i in range(1, 21)]
    content = render_email(digest_of(papers))
    assert content.subject == "20 new papers for efficient-attention · Mon 23 Nov"
    assert "<style" not in content.html and 'style="' in content.html
    assert 'width="600"' in content.html and "max-width: 600px" in content.html
    assert "<img" not in content.html
    assert len(content.html.encode("utf-8")) < 100 * 1024
    assert "Linear attention study number 20" in content.text
    assert "https://github.com/example/repo20" in content.text


def test_a_template_in_templates_dir_overrides_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "subject.txt.j2").write_text("Digest: {{ digest.profile }}\n")
    content = render_email(digest_of([make_paper(1)]), templates_dir=tmp_path)
    assert content.subject == "Digest: efficient-attention"


def test_empty_digest_renders_in_every_format() -> None:
    digest = digest_of([])
    [message] = render_slack_messages(digest)
    assert "Nothing new matched" in json.dumps(message.blocks)
    assert "Nothing new matched" in render_email(digest).text


def test_digest_command_renders_every_format_without_sending(cli, seeds: Path) -> None:
    assert cli("ingest", str(seeds)).exit_code == 0
    slack = cli("digest", "--profile", "efficient-attention", "--format", "slack")
    assert slack.exit_code == 0, slack.stderr
    messages = json.loads(slack.stdout)
    assert messages[0]["blocks"][0]["type"] == "header"
    html = cli("digest", "--profile", "efficient-attention", "--format", "email-html")
    assert html.stdout.startswith("<!DOCTYPE html>")
    text = cli("digest", "--profile", "efficient-attention", "--format", "email-text")
    assert text.stdout.startswith("10 new papers for efficient-attention")
    md = cli("digest", "--profile", "efficient-attention", "--format", "markdown")
    assert md.stdout.startswith("# 10 new papers")
    assert not (Path.cwd() / "out").exists()


def test_a_button_value_over_slacks_limit_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "slack").mkdir()
    (tmp_path / "slack" / "_paper.json.j2").write_text(
        "{% macro paper_blocks(item, profile) -%}\n"
        '{"type": "actions", "block_id": "vote:x", "elements": [{"type": "button", '
        '"action_id": "digestbot_vote_up", "text": {"type": "plain_text", "text": "👍"}, '
        '"value": {{ ("v" * 2001) | tojson }}}]}\n'
        "{%- endmacro %}\n"
    )
    with pytest.raises(RenderError, match="value attribute cannot exceed 2000 characters"):
        render_slack_messages(digest_of([make_paper(1)]), templates_dir=tmp_path)


def _texts(block: dict[str, Any]) -> list[str]:
    """Every text object's text in a block (a section's text, a header's, context elements)."""
    found = [block["text"]["text"]] if isinstance(block.get("text"), dict) else []
    for element in block.get("elements") or []:
        if isinstance(element, dict) and element.get("type") in ("mrkdwn", "plain_text"):
            found.append(element["text"])
    return found


def test_a_long_description_or_profile_name_stays_within_slacks_text_limits() -> None:
    # Slack refuses the whole message (invalid_blocks) when one text object is too long:
    # a context element holds 3,000 characters, a header 150
    long_name = "efficient-attention-" + "x" * 140
    digest = Digest(
        profile=long_name,
        digest_date=date(2026, 11, 23),
        generated_at=NOW,
        papers=(ScoredPaper(paper=make_paper(1), score=1.0, why="matches"),),
        description="Linear attention & state space models. " * 120,  # ~4,700 characters
    )
    [message] = render_slack_messages(digest)
    header = next(b for b in message.blocks if b["type"] == "header")
    assert len(header["text"]["text"]) <= 150
    assert header["text"]["text"].startswith("1 new paper for efficient-attention-")
    for block in message.blocks:
        assert all(len(text) <= 3000 for text in _texts(block)), block.get("type")
    context = " ".join(t for b in message.blocks if b["type"] == "context" for t in _texts(b))
    assert long_name in context  # the full name is still shown
    assert "Linear attention &amp; state space models." in context


def test_a_large_email_digest_stays_under_gmails_clipping_size_with_every_paper() -> None:
    # Gmail clips an HTML part over 102 KB: the unsubscribe footer would disappear
    papers = [make_paper(i, abstract="attention " * 300) for i in range(1, 101)]
    url = "https://digest.example.org/unsubscribe?t=T"
    content = render_email(digest_of(papers), unsubscribe_url=url)
    assert len(content.html.encode("utf-8")) <= 100 * 1024
    for paper in papers:
        assert paper.title in content.html and paper.title in content.text
    assert url in content.html and url in content.text
