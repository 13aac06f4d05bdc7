"""Slack messages for ``/papers``: rendering answers, button values, showing a vote.

Button contract (shared with the digests of ``templates/slack/_paper.json.j2``):
action ids ``digestbot_vote_up`` / ``digestbot_vote_down`` (and ``digestbot_share``
on ephemeral answers), value the JSON string ``{"paper": id, "profile": name}``;
an empty profile, ``"@me"`` or ``"@<user id>"`` (personal digests) means the clicking
person's own profile. "More" (``digestbot_more``) carries ``{"q": text, "offset": n}``.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from digestbot.errors import RenderError
from digestbot.models import Paper, ScoredPaper
from digestbot.render import pack_lines, render_template

ACTION_UP = "digestbot_vote_up"
ACTION_DOWN = "digestbot_vote_down"
ACTION_SHARE = "digestbot_share"
ACTION_MORE = "digestbot_more"
PERSONAL = "@me"
MAX_QUERY_IN_BUTTON = 500  # a button value holds at most 2,000 characters
MAX_BLOCKS = 50  # Slack refuses a message (or an update) with more
MAX_SECTION_TEXT = 3000  # characters in one section's text


class PaperButton(BaseModel):
    """The value of a vote / share button (untrusted: it comes back from a client)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    paper: str = Field(min_length=1, max_length=255)
    profile: str = Field("", max_length=255)

    @property
    def is_personal(self) -> bool:
        # "@<user id>": a personal digest's buttons (only that person sees the DM)
        return self.profile in ("", PERSONAL) or self.profile.startswith("@")


class MoreButton(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    q: str = Field(min_length=1, max_length=MAX_QUERY_IN_BUTTON)
    offset: int = Field(ge=0, le=10_000)


def parse_paper_button(value: str) -> PaperButton | None:
    try:
        return PaperButton.model_validate_json(value)
    except ValidationError:
        return None


def parse_more_button(value: str) -> MoreButton | None:
    try:
        return MoreButton.model_validate_json(value)
    except ValidationError:
        return None


def paper_button_value(paper_id: str, profile: str) -> str:
    return json.dumps({"paper": paper_id, "profile": profile}, ensure_ascii=False)


def more_button_value(query: str, offset: int) -> str:
    return json.dumps({"q": query[:MAX_QUERY_IN_BUTTON], "offset": offset}, ensure_ascii=False)


def render_answer(
    *,
    text: str,
    header: str = "",
    papers: Sequence[Paper | ScoredPaper] = (),
    profile: str = PERSONAL,
    share: bool = True,
    more: str | None = None,
    footer: str = "",
    templates_dir: Path | None = None,
) -> dict[str, Any]:
    """A message payload ``{"text", "blocks"}``; ``header``/``footer`` are trusted mrkdwn."""
    items = []
    for entry in papers:
        paper, why = (entry.paper, entry.why) if isinstance(entry, ScoredPaper) else (entry, "")
        items.append({"paper": paper, "why": why, "value": paper_button_value(paper.id, profile)})
    rendered = render_template(
        "slack/answer.json.j2",
        templates_dir=templates_dir,
        text=text,
        header=header,
        items=items,
        share=share,
        more=more,
        footer=footer,
    )
    try:
        payload = json.loads(rendered)
    except json.JSONDecodeError as exc:
        raise RenderError(f"not valid JSON: {exc}", template="slack/answer.json.j2") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("blocks"), list):
        raise RenderError("must give an object with a blocks list", template="slack/answer.json.j2")
    return payload


def text_answer(text_mrkdwn: str, *, fallback: str | None = None) -> dict[str, Any]:
    """A text answer; ``text_mrkdwn`` is trusted mrkdwn (escape its untrusted parts). A text
    over Slack's 3,000 characters a section is split at line ends into several sections."""
    return {
        "text": fallback if fallback is not None else text_mrkdwn,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
            for chunk in _sections(text_mrkdwn)[:MAX_BLOCKS]
        ],
    }


def _sections(text: str, limit: int = MAX_SECTION_TEXT) -> list[str]:
    # a line too long for one section is cut into pieces first (rare)
    pieces = [
        line[start : start + limit]
        for line in text.split("\n")
        for start in range(0, max(len(line), 1), limit)
    ]
    chunks = pack_lines(pieces, limit)
    return [c for c in chunks if c.strip()] or [text[:limit] or " "]


def mark_vote(
    blocks: Sequence[dict[str, Any]], *, block_id: str, value: int, note: str
) -> list[dict[str, Any]]:
    """The message's blocks with the vote shown under the clicked actions block.

    The chosen button gets a style and a context line says who voted what; voting
    again replaces that line (``note``: trusted mrkdwn). Other blocks are left as they are.
    A line that would take the message over Slack's 50 blocks is left out (the style
    still shows the vote; ``has_vote_note`` tells the caller to say it another way).
    """
    updated = copy.deepcopy(list(blocks))
    note_id = _note_id(block_id)
    updated = [b for b in updated if b.get("block_id") != note_id]
    for position, block in enumerate(updated):
        if block.get("type") != "actions" or block.get("block_id") != block_id:
            continue
        for element in block.get("elements", []):
            element.pop("style", None)
            if element.get("action_id") == ACTION_UP and value > 0:
                element["style"] = "primary"
            elif element.get("action_id") == ACTION_DOWN and value < 0:
                element["style"] = "danger"
        updated.insert(
            position + 1,
            {
                "type": "context",
                "block_id": note_id,
                "elements": [{"type": "mrkdwn", "text": note}],
            },
        )
        if len(updated) > MAX_BLOCKS:
            del updated[position + 1]
        break
    return updated


def has_vote_note(blocks: Sequence[dict[str, Any]], *, block_id: str) -> bool:
    """Whether ``mark_vote`` could show the vote on ``block_id`` inside the message."""
    return any(b.get("block_id") == _note_id(block_id) for b in blocks)


def _note_id(block_id: str) -> str:
    return f"{block_id}_vote"[:255]


class AnswerMemory:
    """The blocks of recent ephemeral answers, so a vote can redraw the answer it came from.

    Slack does not send an ephemeral message's blocks back with a click; each
    answer's actions blocks get a ``.<answer id>`` suffix and the blocks are kept
    here (in this process, the newest ``size`` answers).
    """

    def __init__(self, size: int = 5_000) -> None:
        self._size = size
        self._answers: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload with its actions blocks tagged with a new answer id, remembered."""
        answer_id = secrets.token_hex(6)
        blocks = copy.deepcopy(payload.get("blocks") or [])
        for block in blocks:
            if block.get("type") == "actions" and str(block.get("block_id", "")).startswith(
                "digestbot_actions_"
            ):
                block["block_id"] = f"{block['block_id']}.{answer_id}"
        self.store(answer_id, blocks)
        return {**payload, "blocks": blocks}

    def store(self, answer_id: str, blocks: list[dict[str, Any]]) -> None:
        with self._lock:
            self._answers[answer_id] = blocks
            self._answers.move_to_end(answer_id)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)

    def recall(self, block_id: str) -> tuple[str, list[dict[str, Any]]] | None:
        """(answer id, blocks) of the answer holding ``block_id``, if still remembered."""
        _, dot, answer_id = block_id.rpartition(".")
        with self._lock:
            blocks = self._answers.get(answer_id) if dot else None
        return (answer_id, copy.deepcopy(blocks)) if blocks is not None else None
