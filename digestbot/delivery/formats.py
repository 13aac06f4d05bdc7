"""Render a digest for each destination format: Slack messages, email parts, Markdown.

Pure functions over the templates. Slack output is validated with
``slack_sdk.models.blocks`` and Slack's limits; a digest that would break them is
split into a header message and thread replies, never truncated. Only a runaway field of
one paper (a title over 300 characters, a name over 120, a link over 2,000) is cut in its
Slack card, so that one bad feed entry cannot fail a destination's digest every day.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import css_inline
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from digestbot.errors import RenderError
from digestbot.models import Digest
from digestbot.render import (
    clip,
    escape_mrkdwn,
    one_line,
    pack_lines,
    render_markdown,
    render_template,
    slack_link,
)

Format = Literal["slack", "email-html", "email-text", "markdown"]
FORMATS: tuple[Format, ...] = ("slack", "email-html", "email-text", "markdown")

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
EMAIL_HTML_BUDGET = 100 * 1024  # Gmail clips a message at 102 KB
SLACK_TEMPLATE = "slack/digest.json.j2"

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """One chat.postMessage: fallback text, blocks, and the papers it carries."""

    text: str
    blocks: tuple[dict[str, Any], ...]
    paper_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    html: str
    text: str
    is_compact: bool = False  # the HTML leaves the abstracts out (``compact`` templates)


# -- Slack ----------------------------------------------------------------------------------
def _paper_of(block: dict[str, Any]) -> str | None:
    block_id = str(block.get("block_id", ""))
    for prefix in ("paper:", "vote:"):
        if block_id.startswith(prefix):
            return block_id[len(prefix) :].split("#", 1)[0]
    return None


def _split_section(block: dict[str, Any]) -> list[dict[str, Any]]:
    """A section whose text is over the limit becomes several, split at line breaks."""
    text = block.get("text")
    if block.get("type") != "section" or not isinstance(text, dict):
        return [block]
    body = str(text.get("text", ""))
    if len(body) <= MAX_SECTION_TEXT:
        return [block]
    lines = body.split("\n")
    longest = max(lines, key=len)
    if len(longest) > MAX_SECTION_TEXT:
        raise RenderError(
            f"a line of {len(longest)} characters does not fit a Slack section "
            f"({MAX_SECTION_TEXT}) in block {block.get('block_id', '?')}",
            template=SLACK_TEMPLATE,
        )
    parts = pack_lines(lines, MAX_SECTION_TEXT)
    out = []
    for index, part in enumerate(parts):
        piece = {**block, "text": {**text, "text": part}}
        if index and "block_id" in block:
            piece["block_id"] = f"{block['block_id']}#{index + 1}"
        out.append(piece)
    return out


def _parse_block(block: dict[str, Any]) -> Block | None:
    """``Block.parse``, with buttons built directly (slack_sdk's generic element lookup
    walks every element class for each button, which dominated the render time)."""
    elements = block.get("elements")
    if block.get("type") == "actions" and isinstance(elements, list):
        parsed = [
            ButtonElement(**{k: v for k, v in e.items() if k != "type"})
            if isinstance(e, dict) and e.get("type") == "button"
            else e
            for e in elements
        ]
        return ActionsBlock(block_id=block.get("block_id"), elements=parsed)
    return Block.parse(block)


def _validate(block: dict[str, Any]) -> None:
    try:
        parsed = _parse_block(block)
        if parsed is None:
            raise RenderError(f"unknown block type {block.get('type')!r}", template=SLACK_TEMPLATE)
        parsed.validate_json()
        # a block's validate_json does not look inside its elements: do that too
        nested = list(getattr(parsed, "elements", None) or [])
        nested.append(getattr(parsed, "accessory", None))
        for element in nested:
            if hasattr(element, "validate_json"):
                element.validate_json()
    except SlackObjectFormationError as exc:
        where = block.get("block_id") or block.get("type")
        raise RenderError(f"block {where}: {exc}", template=SLACK_TEMPLATE) from exc


def _shape(block: dict[str, Any]) -> str:
    """A block's JSON without its id and button values: blocks of one shape validate alike."""
    if block.get("type") != "actions":
        return json.dumps(block, sort_keys=True)
    elements = [
        {k: v for k, v in e.items() if k != "value"} if isinstance(e, dict) else e
        for e in block.get("elements") or []
    ]
    return json.dumps({**block, "block_id": None, "elements": elements}, sort_keys=True)


def _check_values(block: dict[str, Any]) -> None:
    """The parts ``_shape`` leaves out, against slack_sdk's own limits."""
    block_id = str(block.get("block_id") or "")
    limit = ActionsBlock.block_id_max_length
    if len(block_id) > limit:
        raise RenderError(
            f"block_id {block_id[:40]}… cannot exceed {limit} characters", template=SLACK_TEMPLATE
        )
    for element in block.get("elements") or [] if block.get("type") == "actions" else []:
        value = element.get("value") if isinstance(element, dict) else None
        if isinstance(value, str) and len(value) > ButtonElement.value_max_length:
            raise RenderError(
                f"block {block_id}: value attribute cannot exceed "
                f"{ButtonElement.value_max_length} characters",
                template=SLACK_TEMPLATE,
            )


def split_blocks(blocks: list[dict[str, Any]]) -> list[tuple[list[dict[str, Any]], list[str]]]:
    """Pack blocks into messages of at most 50, keeping each paper's blocks together.

    Returns (blocks, paper ids) per message. Head blocks (before the first paper)
    open the first message; the footer closes the last one.
    """
    head: list[dict[str, Any]] = []
    units: list[tuple[str, list[dict[str, Any]]]] = []
    pending: list[dict[str, Any]] = []
    for block in blocks:
        paper = _paper_of(block)
        if paper is None:
            (pending if units else head).append(block)
            continue
        if units and units[-1][0] == paper and not pending:
            units[-1][1].append(block)
        else:
            if units:
                units[-1][1].extend(pending)
            pending = []
            units.append((paper, [block]))
    foot = pending

    def trimmed(message: list[dict[str, Any]]) -> list[dict[str, Any]]:
        while message and message[-1].get("type") == "divider":
            message = message[:-1]
        return message

    messages: list[tuple[list[dict[str, Any]], list[str]]] = []
    current: list[dict[str, Any]] = list(head)
    current_ids: list[str] = []
    for paper, unit in units:
        if len(unit) > MAX_BLOCKS - 1:
            raise RenderError(
                f"paper {paper} needs {len(unit)} blocks, more than a message holds",
                template=SLACK_TEMPLATE,
            )
        if len(trimmed(current + unit)) > MAX_BLOCKS:
            messages.append((trimmed(current), current_ids))
            current, current_ids = [], []
        current = current + unit
        current_ids.append(paper)
    if len(current) + len(foot) > MAX_BLOCKS:
        messages.append((trimmed(current), current_ids))
        current, current_ids = [b for b in foot if b.get("type") != "divider"], []
    else:
        current = current + foot
    messages.append((current, current_ids))
    return [(m, ids) for m, ids in messages if m]


def render_slack_messages(
    digest: Digest, *, templates_dir: Path | None = None
) -> list[SlackMessage]:
    """The digest as one or more Slack messages (the first is the header, the rest replies)."""
    raw = render_template(SLACK_TEMPLATE, templates_dir=templates_dir, digest=digest)
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RenderError(
            f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
            template=SLACK_TEMPLATE,
        ) from None
    text = payload.get("text") if isinstance(payload, dict) else None
    blocks = payload.get("blocks") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not text.strip():
        raise RenderError("the message needs a fallback 'text'", template=SLACK_TEMPLATE)
    if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
        raise RenderError("'blocks' must be a list of objects", template=SLACK_TEMPLATE)
    expanded = [piece for block in blocks for piece in _split_section(block)]
    checked: set[str] = set()
    for block in expanded:
        key = _shape(block)
        if key not in checked:  # twenty dividers, or vote buttons that differ only in value
            _validate(block)
            checked.add(key)
        _check_values(block)
    packed = split_blocks(expanded)
    total = len(packed)
    return [
        SlackMessage(
            text=text if index == 0 else f"{text} ({index + 1}/{total})",
            blocks=tuple(blocks_),
            paper_ids=tuple(ids),
        )
        for index, (blocks_, ids) in enumerate(packed)
    ]


PLAIN_TITLE = 300  # characters of a title in the plain fallback (as in the Slack card)
PLAIN_NOTE = "_Sent as plain text: Slack did not accept this digest's formatting._"


def render_slack_plain(digest: Digest, messages: Sequence[SlackMessage]) -> list[SlackMessage]:
    """The digest as plain mrkdwn text, no blocks: what is posted when Slack refuses the
    blocks for their content (``invalid_blocks``…). One message per message of
    ``messages`` carrying the same papers, so a part is the same part in either form
    (the metadata that finds a posted part does not depend on the form)."""
    numbered = {item.paper.id: (n, item) for n, item in enumerate(digest.papers, start=1)}
    out = []
    for index, message in enumerate(messages):
        lines = [f"*{message.text}*"]
        for paper_id in message.paper_ids:
            if paper_id not in numbered:
                continue
            n, item = numbered[paper_id]
            title = clip(item.paper.title, PLAIN_TITLE)
            lines.append(f"{n}. {slack_link(item.paper.link, title)}")
        if not digest.papers:
            lines.append(escape_mrkdwn("Nothing new matched this profile today."))
        if index == len(messages) - 1:
            lines.append(PLAIN_NOTE)
        out.append(SlackMessage(text="\n".join(lines), blocks=(), paper_ids=message.paper_ids))
    return out


# -- email ----------------------------------------------------------------------------------
def render_email(
    digest: Digest,
    *,
    templates_dir: Path | None = None,
    unsubscribe_url: str = "",
    week: str = "",
    compact: bool = False,
) -> EmailContent:
    """Subject (one line), HTML with inlined CSS, and plain text.

    ``unsubscribe_url`` (the reader's one-click link, or one with the token slot) goes in
    the footer; ``week`` (``16–22 Nov``) makes it the weekly edition. With ``compact`` (or
    when the full HTML is over Gmail's clipping size) the HTML leaves the abstracts out:
    titles, links and the short *why* (the email's middle form when the mail server refuses
    the full message; the text part has no abstracts either way)."""
    context = {"digest": digest, "unsubscribe_url": unsubscribe_url, "week": week}
    subject = one_line(
        render_template("email/subject.txt.j2", templates_dir=templates_dir, **context)
    )
    inlined = _email_html(context, templates_dir=templates_dir, compact=compact)
    if not compact and len(inlined.encode("utf-8")) > EMAIL_HTML_BUDGET:
        # Gmail would clip it, footer and all
        compact = True
        inlined = _email_html(context, templates_dir=templates_dir, compact=True)
        size = len(inlined.encode("utf-8"))
        if size > EMAIL_HTML_BUDGET:
            log.warning(
                "the HTML email for %s is %d KB even without abstracts: Gmail clips it "
                "after 102 KB (a lower top_k keeps it whole)",
                digest.profile,
                size // 1024,
            )
    text = render_template("email/digest.txt.j2", templates_dir=templates_dir, **context)
    return EmailContent(subject=subject, html=inlined, text=text, is_compact=compact)


def render_email_cut(
    digest: Digest,
    keep: int,
    *,
    templates_dir: Path | None = None,
    unsubscribe_url: str = "",
    week: str = "",
) -> EmailContent:
    """The plain text of ``render_email`` listing only the first ``keep`` papers, then a
    line saying how many more are offered again (the message is cut to fit the mail
    server's size limit). The subject counts every paper; there is no HTML part."""
    shown = replace(digest, papers=digest.papers[:keep])
    context = {"unsubscribe_url": unsubscribe_url, "week": week}
    subject = one_line(
        render_template(
            "email/subject.txt.j2", templates_dir=templates_dir, digest=digest, **context
        )
    )
    text = render_template(
        "email/digest.txt.j2",
        templates_dir=templates_dir,
        digest=shown,
        more=digest.count - shown.count,
        **context,
    )
    return EmailContent(subject=subject, html="", text=text)


def _email_html(context: dict[str, Any], *, templates_dir: Path | None, compact: bool) -> str:
    """The HTML part with its CSS inlined; ``compact`` leaves the abstracts out."""
    name = "email/digest.html.j2"
    html = render_template(name, templates_dir=templates_dir, compact=compact, **context)
    try:
        return css_inline.inline(html)
    except ValueError as exc:  # css_inline.InlineError is a ValueError
        raise RenderError(f"cannot inline CSS: {exc}", template=name) from exc


# -- any ------------------------------------------------------------------------------------
def render_format(digest: Digest, fmt: Format, *, templates_dir: Path | None = None) -> str:
    """One format as text: Slack as a JSON list of messages, email parts, Markdown."""
    if fmt == "markdown":
        return render_markdown(digest, templates_dir=templates_dir)
    if fmt == "slack":
        messages = render_slack_messages(digest, templates_dir=templates_dir)
        doc = [{"text": m.text, "blocks": list(m.blocks)} for m in messages]
        return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    content = render_email(digest, templates_dir=templates_dir)
    return content.html if fmt == "email-html" else content.text


def file_suffix(fmt: Format) -> str:
    return {"markdown": ".md", "slack": ".json", "email-html": ".html", "email-text": ".txt"}[fmt]
