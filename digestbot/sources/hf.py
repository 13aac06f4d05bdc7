"""Parse Hugging Face daily papers JSON: the ``/api/daily_papers`` API and JSON Feed.

The API answers a JSON list; each item has a ``paper`` object (``id`` = arXiv id,
``title``, ``summary``, ``authors[].name``, ``upvotes``, ``publishedAt``) and,
in the newer schema, ``githubRepo``, ``githubStars``, ``projectPage`` and an
``organization``. Both schemas are read; unknown keys are ignored. A malformed
item is skipped with a warning naming its index and field; an error object
(``{"error": …}``) is an error with the API's message.

JSON Feed (https://jsonfeed.org, versions 1 and 1.1) is read for community
feeds of the same papers.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from digestbot.errors import FeedError, SourceError
from digestbot.ids import parse_arxiv_id
from digestbot.models import Paper, SourceRef
from digestbot.sources.feeds import (
    FeedItem,
    FeedParse,
    clean_text,
    mark_shared_links,
    split_hf_summary,
    unique_entries,
)

HF_PAPERS_URL = "https://huggingface" + ".co/papers/"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _HfAuthor(_Loose):
    name: str = ""
    hidden: bool = False


class _HfOrg(_Loose):
    name: str = ""
    fullname: str | None = None


class _HfPaper(_Loose):
    id: str
    title: str
    summary: str = ""
    authors: list[_HfAuthor] = Field(default_factory=list)
    publishedAt: datetime | None = None
    upvotes: int = 0
    githubRepo: str | None = None
    githubStars: int | None = None
    projectPage: str | None = None
    organization: _HfOrg | None = None
    ai_summary: str | None = None


class _HfItem(_Loose):
    paper: _HfPaper
    title: str | None = None
    organization: _HfOrg | None = None
    numComments: int | None = None


def _decode(data: bytes, *, name: str) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"not UTF-8 JSON: {exc.reason} at byte {exc.start}", source=name
        ) from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"not JSON: {exc.msg}", source=name, line=exc.lineno) from None


def _field_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "<item>"
    return f"{where}: {first['msg']}"


def _hf_paper(item: _HfItem, *, name: str) -> Paper:
    paper = item.paper
    found = parse_arxiv_id(paper.id)
    authors = tuple(clean_text(a.name) for a in paper.authors if a.name and not a.hidden)
    org = paper.organization or item.organization
    # the paper's HF page first, also for an id that is no arXiv id: it is the paper's own
    # link, which keys a paper whose title has no letter or digit (``ids.paper_key``)
    page = paper.id if found else quote(paper.id.strip(), safe="")
    urls = [HF_PAPERS_URL + page] if page else []
    urls += [u for u in (paper.githubRepo, paper.projectPage) if u and u.startswith("http")]
    extra: dict[str, Any] = {"hf_upvotes": paper.upvotes}
    if paper.githubRepo:
        extra["github_repo"] = paper.githubRepo
    if paper.githubStars is not None:
        extra["github_stars"] = paper.githubStars
    if paper.projectPage:
        extra["project_page"] = paper.projectPage
    if paper.ai_summary:
        extra["ai_summary"] = clean_text(paper.ai_summary)
    if item.numComments is not None:
        extra["hf_comments"] = item.numComments
    return Paper(
        title=clean_text(paper.title or item.title or ""),
        abstract=clean_text(paper.summary),
        authors=authors,
        authors_count=len(paper.authors) or None,
        organization=(org.fullname or org.name or None) if org else None,
        published=paper.publishedAt.date() if paper.publishedAt else None,
        upvotes=max(paper.upvotes, 0),
        urls=tuple(dict.fromkeys(urls)),
        arxiv_id=found[0] if found else None,
        arxiv_version=found[1] if found else None,
        source=SourceRef(kind="feed", name=name, entry=paper.id),
        extra=extra,
    )


def parse_hf_daily_papers(data: bytes, *, name: str) -> FeedParse:
    """The daily-papers API's JSON list -> papers and warnings."""
    doc = _decode(data, name=name)
    if isinstance(doc, dict):
        message = doc.get("error") or doc.get("message")
        if message:
            raise FeedError(f"Hugging Face API error: {clean_text(str(message))}", source=name)
        raise SourceError("expected a JSON list of daily papers, got an object", source=name)
    if not isinstance(doc, list):
        raise SourceError(
            f"expected a JSON list of daily papers, got {type(doc).__name__}", source=name
        )
    items: list[FeedItem] = []
    warnings: list[str] = []
    for index, raw in enumerate(doc):
        try:
            item = _HfItem.model_validate(raw)
        except ValidationError as exc:
            warnings.append(f"{name}: item {index + 1}: {_field_error(exc)}, skipped")
            continue
        paper = _hf_paper(item, name=name)
        if not paper.title:
            warnings.append(f"{name}: item {index + 1}: no title, skipped")
            continue
        items.append(FeedItem(paper=paper, guid=item.paper.id))
    items, repeats = unique_entries(items, name=name)
    return FeedParse(items=items, warnings=warnings + repeats, entries=len(doc), format="hf-api")


def is_json_feed(data: bytes) -> bool:
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{") and b"jsonfeed.org/version" in data[:4096]


class _JsonAuthor(_Loose):
    name: str = ""


class _JsonItem(_Loose):
    id: str | int
    url: str | None = None
    title: str = ""
    content_text: str | None = None
    content_html: str | None = None
    summary: str | None = None
    date_published: Any = None  # RFC 3339 by the spec; read by ``_json_date``
    authors: list[_JsonAuthor] = Field(default_factory=list)
    author: _JsonAuthor | None = None


def _json_date(value: Any) -> date | None:
    """A JSON Feed item's ``date_published``: RFC 3339 as the spec says, else an RFC 822
    date (a generator writing its RSS dates); None when it is neither (the item is kept:
    a date is no reason to lose a paper)."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")).date()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_json_feed(data: bytes, *, name: str) -> FeedParse:
    """A JSON Feed document -> papers and warnings."""
    doc = _decode(data, name=name)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise SourceError("not a JSON Feed (no items list)", source=name)
    items: list[FeedItem] = []
    warnings: list[str] = []
    for index, raw in enumerate(doc["items"]):
        try:
            entry = _JsonItem.model_validate(raw)
        except ValidationError as exc:
            warnings.append(f"{name}: item {index + 1}: {_field_error(exc)}, skipped")
            continue
        title = clean_text(entry.title)
        if not title:
            warnings.append(f"{name}: item {index + 1}: no title, skipped")
            continue
        guid = str(entry.id)
        found = parse_arxiv_id(guid) or (parse_arxiv_id(entry.url) if entry.url else None)
        text = entry.content_text or clean_text(entry.content_html or "", is_html=True)
        abstract, ai_summary = split_hf_summary(clean_text(text or entry.summary or ""))
        published = _json_date(entry.date_published)
        if published is None and entry.date_published is not None:
            shown = str(entry.date_published)[:80]
            warnings.append(f"{name}: item {index + 1}: unreadable date_published {shown!r}")
        people = entry.authors or ([entry.author] if entry.author else [])
        authors = tuple(clean_text(a.name) for a in people if a.name)
        paper = Paper(
            title=title,
            abstract=abstract,
            authors=authors,
            authors_count=len(authors) or None,
            published=published,
            urls=(entry.url,) if entry.url and entry.url.startswith("http") else (),
            arxiv_id=found[0] if found else None,
            arxiv_version=found[1] if found else None,
            source=SourceRef(kind="feed", name=name, entry=guid),
            extra={"ai_summary": ai_summary} if ai_summary else {},
        )
        items.append(FeedItem(paper=paper, guid=guid))
    home = doc.get("home_page_url")
    items = mark_shared_links(items, home=home if isinstance(home, str) else "")
    items, repeats = unique_entries(items, name=name)
    return FeedParse(
        items=items, warnings=warnings + repeats, entries=len(doc["items"]), format="json-feed"
    )
