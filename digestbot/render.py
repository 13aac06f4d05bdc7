"""One Jinja2 environment over the templates: the user's ``templates_dir`` first, then ours.

HTML templates (``*.html.j2``) are autoescaped; every template is rendered with
``StrictUndefined`` so a typo in a template is an error, not a blank. Untrusted
text reaching Markdown or Slack goes through the ``md`` / ``mrkdwn`` filters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

import digestbot
from digestbot.errors import RenderError
from digestbot.models import Digest

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_SAFE_URL = re.compile(r"(?i)https?://[^\s\x00-\x1f\x7f\"<>]+\Z")


def shipped_templates_dir() -> Path:
    """``digestbot/templates`` in a wheel, the repository's ``templates/`` in a checkout."""
    package = Path(digestbot.__file__).parent
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RenderError("the shipped templates are missing", template="templates/")


def escape_mrkdwn(text: Any) -> str:
    """Slack mrkdwn: only ``&``, ``<`` and ``>`` are control characters."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markdown(text: Any) -> str:
    """Markdown: HTML-escape, then backslash the characters that make links and emphasis."""
    value = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    value = " ".join(value.split())
    return _MD_SPECIAL.sub(r"\\\1", value)


MAX_URL = 2000  # longer is no real paper or code link (and would not fit a Slack line)


def safe_url(url: Any) -> str:
    """An ``http(s)`` URL without white space or control characters, else ``''``.

    Keeps ``javascript:`` and friends out of ``href`` attributes and Slack links.
    """
    text = str(url or "").strip()
    return text if len(text) <= MAX_URL and _SAFE_URL.match(text) else ""


def markdown_url(url: Any) -> str:
    """``safe_url`` written for a Markdown link or autolink: its parentheses percent-encoded
    (the same address), so that a ``)`` cannot end the link and begin one of its own; ``<``,
    ``>``, quotes and white space are refused by ``safe_url`` already (no raw HTML)."""
    return safe_url(url).replace("(", "%28").replace(")", "%29")


MAX_SLACK_URL = 2000  # escaped: a link line must fit a Slack section (3,000) with its label


def slack_link(url: Any, label: Any) -> str:
    """A mrkdwn link ``<url|label>``, both parts escaped; only the label if the URL is unsafe
    or too long once escaped (``&`` is 5 characters: a feed's tracking link full of them
    would make a line Slack refuses, and the digest would fail every day)."""
    target = safe_url(url)
    text = escape_mrkdwn(" ".join(str(label).split()))
    escaped = escape_mrkdwn(target.replace("|", "%7C"))
    if not target or len(escaped) > MAX_SLACK_URL:
        return text
    return f"<{escaped}|{text}>"


def one_line(text: Any) -> str:
    """Fold every run of white space (CR/LF included) to one space."""
    return " ".join(str(text).split())


def pack_lines(lines: Iterable[str], limit: int) -> list[str]:
    """Consecutive lines joined with newlines into as few texts of at most ``limit``
    characters as go, in order (a line longer than ``limit`` stays a text of its own:
    callers cut or refuse such lines first)."""
    texts: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            texts.append(current)
            current = line
        else:
            current = candidate
    texts.append(current)
    return texts


def clip(text: Any, limit: int) -> str:
    """``one_line``, cut at a word boundary to at most ``limit`` characters with "…" when
    longer: a feed's runaway title or author list must not make a Slack block too long
    (Slack refuses the whole message, and the digest would fail every day)."""
    value = one_line(text)
    if len(value) <= limit:
        return value
    cut = value[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _autoescape(name: str | None) -> bool:
    return name is not None and name.endswith((".html.j2", ".html", ".htm"))


@lru_cache(maxsize=8)
def build_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    search = [str(templates_dir)] if templates_dir else []
    search.append(str(shipped_templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=_autoescape,  # noqa: S701 - HTML on; text formats escape by filter
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = escape_markdown
    env.filters["mrkdwn"] = escape_mrkdwn
    env.filters["safe_url"] = safe_url
    env.filters["md_url"] = markdown_url
    env.filters["one_line"] = one_line
    env.filters["clip"] = clip
    env.globals["slack_link"] = slack_link
    env.filters["isodate"] = lambda d: d.isoformat() if isinstance(d, date | datetime) else ""
    return env


def render_template(name: str, *, templates_dir: Path | None = None, **context: Any) -> str:
    try:
        template = build_environment(templates_dir).get_template(name)
        return template.render(**context)
    except jinja2.TemplateNotFound:
        raise RenderError("not found", template=name) from None
    except jinja2.TemplateError as exc:
        raise RenderError(str(exc), template=name) from None


def render_markdown(digest: Digest, *, templates_dir: Path | None = None) -> str:
    return render_template("markdown/digest.md.j2", templates_dir=templates_dir, digest=digest)
