"""Acronyms defined in the papers themselves (Schwartz & Hearst, 2003), and which to trust.

A paper defines an acronym as ``long form (SF)`` or ``SF (long form)``. The short
form is one token of 2-10 characters that starts with a letter or digit, holds a
letter, and is written as an acronym (at least two capitals, or every letter a
capital: ``SSM``, ``ViT``, ``3D``; not ``Mamba``, ``ours``); a trailing plural
``s`` after a capital is dropped (``SSMs``). Its long form is the shortest span of
the words before the parenthesis (at most ``min(|SF| + 5, 2 |SF|)`` of them, within
the clause) whose letters hold the short form's letters and digits in order, the
first at the start of a word (S&H's ``findBestLongForm``); in the second pattern
that span must be the whole parenthesis, and its last word must hold the short form's
last character (``LLMs (large language models such as GPT-4)`` says more than its long
form, and is refused). A long form no longer than its short form,
or holding it as a word, is refused.

A definition is kept as keys the index searches: the short form's and the long
form's content words, stemmed (``ssm``, ``state space model``), with the forms as
first written for display and searching. ``trusted`` says which pairs a query
may expand: defined in at least ``MIN_PAPERS`` papers, and by at least
``MIN_SHARE`` of the papers defining that short form (``SAM``: segment anything
model and sharpness-aware minimisation, both common, is not expanded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from digestbot.ranking.text import (
    _WORD,
    Mined,
    _joined,
    _long_form,
    _phrase_words,
    _word_parts,
    fold,
)

MIN_PAPERS = 2  # a definition seen in fewer papers is not trusted
MIN_SHARE = 2 / 3  # ... nor one that fewer than this share of its short form's papers give
MAX_KEY = 255  # characters of a stored key (a longer long form is refused)
MAX_SHORT_KEY = 64

_PAREN = re.compile(r"\(([^()]{1,200})\)")
# a clause ends at a word holding a bracket, or ending with a sentence mark
_CLAUSE_ENDS = ("(", ")", "[", "]", "{", "}", ". ", "; ", ": ", "! ", "? ")
_EDGE = re.compile(r"^[^\w]+|[^\w]+$")


class Definition(NamedTuple):
    """One definition (a plain tuple once pickled: the ingest workers send them)."""

    short_key: str  # the short form's content words, stemmed (``ssm``)
    long_key: str  # the long form's (``state space model``)
    spelling: str  # ``long_key`` with hyphenated words joined (``multi-modal``: ``multimod``)
    short: str  # as written (``SSM``)
    long: str  # as written, folded (``state space models``)


def definitions(text: str) -> list[Definition]:
    """The acronym definitions of a text, each (short key, long key) once, in order."""
    return paper_definitions("", text)


def paper_definitions(title: str, abstract: str) -> list[Definition]:
    """A paper's definitions (title and abstract), each pair once."""
    out: dict[tuple[str, str], Definition] = {}
    for text in (title, abstract):
        if "(" not in text:
            continue
        for match in _PAREN.finditer(text):
            found = _definition(text, match)
            if found is not None:
                out.setdefault((found.short_key, found.long_key), found)
    return list(out.values())


def _definition(text: str, match: re.Match[str]) -> Definition | None:
    inside = match.group(1).strip()
    first = inside.split(";", 1)[0].split(",", 1)[0].strip()
    if first and " " not in first:  # long form (SF)
        if first.islower():  # quick refusal: no capital
            return None
        short = _short_form(first)
        if short is None:
            return None
        window = _clause_words(text, match.start(), min(len(short) + 5, 2 * len(short)))
        return _checked(short, best_long_form(short, " ".join(window)) if window else None)
    # SF (long form)
    before = text[max(0, match.start() - 40) : match.start()].rstrip()
    if not before or not before[-1].isalnum():
        return None
    word = before.rsplit(None, 1)[-1]
    if word.islower():  # quick refusal: no capital
        return None
    short = _short_form(_EDGE.sub("", word))
    if short is None or len(inside.split()) > min(len(short) + 5, 2 * len(short)):
        return None
    long = best_long_form(short, inside)
    if long != inside or not _ends_on_a_letter(short, inside):
        return None
    return _checked(short, long)


def _ends_on_a_letter(short: str, long: str) -> bool:
    """Whether the last word of ``long`` holds the short form's last letter or digit: a
    parenthesis saying more than the long form (``LLMs (large language models such as
    GPT-4)``, ``DiT (diffusion transformer-based video generation models)``) is refused."""
    last = next((c for c in reversed(short.lower()) if c.isalnum()), "")
    return last in long.rsplit(None, 1)[-1].lower()


def _clause_words(text: str, end: int, count: int) -> list[str]:
    """The last ``count`` words before ``end``, within their clause (after the last word
    holding a bracket, or ending a sentence)."""
    tail = " ".join(text[max(0, end - 300) : end].split()[-count:])
    cut = max(map(tail.rfind, _CLAUSE_ENDS))
    if cut >= 0:  # the words after the one holding it
        space = tail.find(" ", cut)
        return tail[space:].split() if space >= 0 else []
    return tail.split()


def _short_form(token: str) -> str | None:
    """The token as a short form (a plural ``s`` after a capital dropped), or None."""
    if len(token) > 2 and token[-1] == "s" and token[-2].isupper():
        token = token[:-1]
    if not 2 <= len(token) <= 10 or not token[0].isalnum():
        return None
    capitals = sum(map(str.isupper, token))
    if not capitals or (capitals < 2 and token != token.upper()):  # an acronym's capitals
        return None
    return token


def best_long_form(short: str, long: str) -> str | None:
    """The shortest end of ``long`` whose characters hold those of ``short`` in order, its
    first at a word start (Schwartz & Hearst's ``findBestLongForm``); None if none does."""
    low = long.lower()
    chars = [c for c in short.lower() if c.isalnum()]
    at = len(low)
    for k in range(len(chars) - 1, -1, -1):
        at = low.rfind(chars[k], 0, at)
        if k == 0:
            while at > 0 and low[at - 1].isalnum():
                at = low.rfind(chars[0], 0, at)
        if at < 0:
            return None
    return long[long.rfind(" ", 0, at) + 1 :]


@lru_cache(maxsize=65536)
def _checked(short: str, long: str | None) -> Definition | None:
    """The definition as keys, unless refused (see the module's docstring)."""
    if long is None:
        return None
    long = _EDGE.sub("", long)
    if len(long) <= len(short) or short.lower() in fold(long).split():
        return None
    short_key = " ".join(_phrase_words(short))
    long_key = " ".join(_phrase_words(_long_form(long)))
    if not short_key or not long_key or short_key == long_key or len(long_key) > MAX_KEY:
        return None
    spelling = " ".join(_phrase_words(_joined(long))) or long_key
    if len(spelling) > MAX_KEY or len(short_key) > MAX_SHORT_KEY:
        return None
    return Definition(short_key, long_key, spelling, short, fold(long))


@dataclass(frozen=True, slots=True)
class Counted:
    """A stored definition: its keys and forms, and how many papers give it."""

    short_key: str
    long_key: str
    spelling: str
    short: str
    long: str
    papers: int


def count_papers(texts: Iterable[tuple[str, str]]) -> list[Counted]:
    """The definitions of these papers (title, abstract) counted by paper, as the store's
    ``acronym_definitions`` counts them (for papers ranked without a store)."""
    counts: dict[tuple[str, str], int] = {}
    forms: dict[tuple[str, str], Definition] = {}
    for title, abstract in texts:
        for found in paper_definitions(title, abstract):
            key = (found.short_key, found.long_key)
            counts[key] = counts.get(key, 0) + 1
            forms.setdefault(key, found)
    return [Counted(*forms[key], papers=n) for key, n in counts.items()]


def trusted(counted: Iterable[Counted]) -> dict[str, list[Counted]]:
    """The definitions a query may expand: per short key, the spellings of its most given
    long form (spellings differing only in hyphens are one: ``multi-modal``,
    ``multimodal``), when given by at least ``MIN_PAPERS`` papers and by ``MIN_SHARE`` of
    those defining the short form (ties: the first spelling key). Most papers first."""
    by_short: dict[str, dict[str, list[Counted]]] = {}
    for item in counted:
        by_short.setdefault(item.short_key, {}).setdefault(item.spelling, []).append(item)
    out: dict[str, list[Counted]] = {}
    for short, groups in by_short.items():
        sizes = {spelling: sum(i.papers for i in items) for spelling, items in groups.items()}
        total = sum(sizes.values())
        best = min(sizes, key=lambda spelling: (-sizes[spelling], spelling))
        if sizes[best] >= MIN_PAPERS and sizes[best] >= MIN_SHARE * total:
            out[short] = sorted(groups[best], key=lambda i: (-i.papers, i.long_key))
    return out


def ambiguous(counted: Sequence[Counted]) -> list[str]:
    """Short keys defined in at least ``MIN_PAPERS`` papers that ``trusted`` refuses."""
    kept = trusted(counted)
    totals: dict[str, int] = {}
    for item in counted:
        totals[item.short_key] = totals.get(item.short_key, 0) + item.papers
    return sorted(k for k, n in totals.items() if n >= MIN_PAPERS and k not in kept)


@lru_cache(maxsize=1024)
def lookup_keys(phrases: tuple[str, ...], texts: tuple[str, ...] = ()) -> frozenset[str]:
    """The keys a definition of any of ``phrases`` (keywords, exclusions) or of a word of
    them or of ``texts`` (a description) is stored under: each one's phrase key, as written
    and with its hyphenated words joined (remembered: a profile is ranked again and again)."""
    out: set[str] = set()
    for text in (*phrases, *texts):
        for token in _WORD.findall(fold(text)):
            out.add(" ".join(_phrase_words(token)))
            if len(_word_parts(token)) > 1:
                out.add(" ".join(_phrase_words(_joined(token))))
    for phrase in phrases:
        out.add(" ".join(_phrase_words(phrase)))
        out.add(" ".join(_phrase_words(_joined(phrase))))
    out.discard("")
    return frozenset(out)


def mined_expansions(counted: Iterable[Counted], *, static: frozenset[str]) -> Mined:
    """The trusted definitions (``trusted``) as ``text.expansions`` reads them: a short
    key -> its long forms, a long form's key (as written, or joined) -> the short form and
    the other spellings. A short form or long form ``ACRONYMS`` has (``static``: its keys)
    is left to it."""
    out: dict[str, list[str]] = {}
    for short, items in sorted(trusted(counted).items()):
        if short in static or any({i.long_key, i.spelling} & static for i in items):
            continue
        longs = [_long_form(item.long) for item in items]
        out.setdefault(short, []).extend(longs)
        for item, own in zip(items, longs, strict=True):
            out.setdefault(item.long_key, []).extend([item.short, *(x for x in longs if x != own)])
            if item.spelling != item.long_key:  # another way to write it (hyphens joined)
                out.setdefault(item.spelling, []).extend([item.short, *longs])
    return tuple((key, tuple(dict.fromkeys(phrases))) for key, phrases in sorted(out.items()))
