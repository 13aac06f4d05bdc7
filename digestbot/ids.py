"""Canonical paper ids.

A paper's id is its version-less arXiv id when known (``2401.01234``,
``cond-mat/0412498``), else ``t-`` and 12 hex digits of the SHA-256 of its
normalised title. The normalised title (casefolded, punctuation and white space
folded) is also kept as ``title_key`` so that a paper first seen without an
arXiv id merges with the same paper seen later with one.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from functools import lru_cache

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)

# New-style (0704.0001 onwards, 4.4 or 4.5 digits) and old-style (archive/YYMMNNN).
_ARXIV_NEW = r"(?P<new>\d{4}\.\d{4,5})"
_ARXIV_OLD = r"(?P<old>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7})"
ARXIV_ID_RE = re.compile(
    rf"(?:arxiv[:./]|abs/|pdf/|^|(?<=[\s:/]))(?:{_ARXIV_NEW}|{_ARXIV_OLD})(?:v(?P<version>\d+))?",
    re.IGNORECASE,
)


@lru_cache(maxsize=16384)
def normalize_title(title: str) -> str:
    """Casefold, NFKC-normalise, fold punctuation and white space (cached: hot in ingest)."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def title_key(title: str) -> str:
    return normalize_title(title)


def title_id_of_key(key: str) -> str:
    """``t-`` and 12 hex digits of the SHA-256 of a normalised title."""
    return "t-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def title_id(title: str) -> str:
    return title_id_of_key(normalize_title(title))


def parse_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Find an arXiv id in a link, guid or id; return (id without version, version)."""
    match = ARXIV_ID_RE.search(text.strip())
    if not match:
        return None
    ident = match.group("new") or match.group("old")
    version = match.group("version")
    return ident, int(version) if version else None


def canonical_id(*, title: str, arxiv_id: str | None) -> str:
    return arxiv_id if arxiv_id else title_id(title)
