"""Plain values that flow between the stages. No I/O here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from digestbot.ids import canonical_id, paper_key


@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where a paper was seen: a drop file entry or a feed item."""

    kind: str  # "drop" | "feed"
    name: str  # the drop file's path, or the feed's name
    entry: str  # the entry's index in the file, or the feed item's guid
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Paper:
    title: str
    abstract: str
    authors_count: int | None = None
    organization: str | None = None
    published: date | None = None
    upvotes: int = 0
    urls: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    source: SourceRef | None = None
    sources: tuple[SourceRef, ...] = ()
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    id: str = ""
    # Source-specific metadata kept as JSON (``papers.extra``): ``github_repo``,
    # ``github_stars``, ``categories``, ``announce_type``, ``doi``…
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.id:
            ident = canonical_id(
                title=self.title,
                arxiv_id=self.arxiv_id,
                link=self.own_link,
                abstract=self.abstract,
                doi=self.doi,
            )
            object.__setattr__(self, "id", ident)

    @property
    def own_link(self) -> str:
        """The paper's own page as its source gave it: a feed item's link (a drop's URLs
        are code links found in the abstract, which other papers may share), unless the
        feed gives that link to other items too (``extra["shared_link"]``)."""
        if (
            self.urls
            and self.source is not None
            and self.source.kind == "feed"
            and not self.extra.get("shared_link")
        ):
            return self.urls[0]
        return ""

    @property
    def doi(self) -> str:
        """The paper's DOI as its source gave it (``extra["doi"]``), else ''."""
        value = self.extra.get("doi") if self.extra else None
        return value if isinstance(value, str) else ""

    @property
    def title_key(self) -> str:
        """The key it merges by when it has no arXiv id (``ids.paper_key``): the normalised
        title, or for a title with no letter or digit or a generic one, its DOI, own link
        or text."""
        return paper_key(self.title, link=self.own_link, abstract=self.abstract, doi=self.doi)

    @property
    def link(self) -> str:
        """The paper's page: arXiv when known, else the first URL found, else ''."""
        if self.arxiv_id:
            return f"https://arxiv.org/abs/{self.arxiv_id}"
        return self.urls[0] if self.urls else ""


@dataclass(frozen=True, slots=True)
class ScoredPaper:
    paper: Paper
    score: float
    why: str
    matched: tuple[str, ...] = ()
    breakdown: Mapping[str, float] = field(default_factory=dict)
    # whether it matched the profile itself (terms, liked papers, meaning), not only through
    # query expansion: set by the ranking for every paper, with a breakdown or not (None:
    # not known, judged from the breakdown)
    direct: bool | None = None


@dataclass(frozen=True, slots=True)
class Digest:
    profile: str
    digest_date: date
    generated_at: datetime
    papers: tuple[ScoredPaper, ...]
    description: str = ""

    @property
    def count(self) -> int:
        return len(self.papers)


def source_as_dict(ref: SourceRef) -> dict[str, object]:
    return {"kind": ref.kind, "name": ref.name, "entry": ref.entry, "line": ref.line}


def paper_as_dict(paper: Paper) -> dict[str, object]:
    """The stable JSON shape of a paper (``digestbot papers --json``)."""
    return {
        "id": paper.id,
        "title": paper.title,
        "abstract": paper.abstract,
        "published": paper.published.isoformat() if paper.published else None,
        "upvotes": paper.upvotes,
        "authors_count": paper.authors_count,
        "organization": paper.organization,
        "authors": list(paper.authors),
        "arxiv_id": paper.arxiv_id,
        "arxiv_version": paper.arxiv_version,
        "urls": list(paper.urls),
        "link": paper.link or None,
        "first_seen": paper.first_seen.isoformat() if paper.first_seen else None,
        "sources": [source_as_dict(s) for s in paper.sources],
        "extra": dict(paper.extra),
    }


def scored_as_dict(item: ScoredPaper) -> dict[str, object]:
    """The stable JSON shape of a ranked paper (``digestbot rank --json``)."""
    return {
        "id": item.paper.id,
        "title": item.paper.title,
        "score": item.score,
        "why": item.why,
        "matched": list(item.matched),
        "breakdown": dict(item.breakdown),
    }
