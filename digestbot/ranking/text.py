"""Tokens for ranking: lower-cased words, light plural folding, stop words."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

STOP_WORDS = frozenset(
    (
        "a",
        "about",
        "above",
        "across",
        "after",
        "again",
        "against",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "new",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "paper",
        "papers",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "via",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "using",
        "use",
        "used",
        "based",
        "work",
        "works",
        "study",
        "studies",
        "approach",
        "approaches",
        "method",
        "methods",
        "propose",
        "proposed",
        "show",
        "shows",
        "results",
        "result",
        "research",
        "including",
        "include",
        "includes",
        "like",
        "interested",
        "interest",
        "interests",
        "topics",
        "topic",
        "related",
        "etc",
        "especially",
        "particularly",
        "e",
        "g",
        "i",
        "e",
    )
)


def fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def stem(word: str) -> str:
    """Plural -> singular, conservatively (``models``->``model``, ``studies``->``study``)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Words, hyphen-split (``sub-quadratic`` -> ``sub``, ``quadratic``), stemmed."""
    out: list[str] = []
    for match in _WORD.finditer(fold(text)):
        for part in re.split(r"[-']", match.group(0)):
            if part:
                out.append(stem(part))
    return out


def content_tokens(text: str) -> list[str]:
    return [t for t in tokenize(text) if t not in STOP_WORDS and len(t) > 1]
