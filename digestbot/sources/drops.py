"""Parse Hugging Face "Daily Papers" text dumps (drops) into ``Paper`` values.

A drop looks like::

    new / Get trending papers… / Subscribe / Daily Papers / byAK and the research community
    Jan 8                                  <- the page date, no year
    <title>
    <abstract paragraph>
      • 6 authors                          <- or an organisation line ("kyutai Kyutai")
    ·
    Jun 17, 2022 4                         <- a date (year optional), then upvotes (optional)

The meta block (the last three lines) is missing for some papers. Parsing is
pure: ``parse_drop`` takes text and returns papers and warnings, or raises
``ParseError`` naming the file and line; ``read_drop`` adds the file I/O.
"""

from __future__ import annotations

import codecs
import os
import re
from dataclasses import dataclass, field
from datetime import MAXYEAR, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from digestbot.errors import ParseError
from digestbot.models import Paper, SourceRef

HEADER_LINES = frozenset(
    {
        "new",
        "get trending papers in your email inbox!",
        "subscribe",
        "daily papers",
        "byak and the research community",
    }
)
HEADER_MARKER = "daily papers"
_HEADER_MAX = 60  # longer lines are never header lines (the longest is 40 characters)
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
# The upvote count as the page prints it: 4, 1,204 / 1.204 / 1 204, 1.2k. Read loosely here
# (digits, separators, a unit) and exactly by ``parse_upvotes``.
_COUNT = r"\d(?:[\d.,\s]*\d)?\s?[kKmM]?"
# spaces as any white space: a page copied from a browser may keep its no-break spaces
_DATE = re.compile(
    r"^(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2})(?:,\s*(?P<year>\d{4}))?"
    rf"(?:\s+(?P<upvotes>{_COUNT}))?$"
)
# a count alone on its line: digits with separators but no ", " (a title "1, 2, 3" is none)
_COUNT_LINE = re.compile(r"^(?:\d+(?:[.,]\d+)*\s?[kKmM]?|\d{1,3}(?:\s\d{3})+)$")
_GROUPED = re.compile(r"^\d{1,3}(?P<sep>[,. ])\d{3}(?:(?P=sep)\d{3})*$")
_SHORT = re.compile(r"^(?P<num>\d+(?:[.,]\d+)?) ?(?P<unit>[kKmM])$")
_UNITS = {"k": 1000, "m": 1_000_000}
_COUNT_MAX_LEN = 16
_AUTHORS = re.compile(r"^•\s*(?P<count>\d+)\s+authors?$")
_DOT = "·"
_URL = re.compile(r"https?://[^\s<>\"'`]+")
_URL_TRAIL = ".,;:!?)]}'\""
# github.com, *.github.io, the Hugging Face hub (huggingface.co, hf.co) and the hub mirror
# that the sample drops link to (b-61j.pages.dev).
_CODE_HOSTS = re.compile(
    r"^(?:www\.)?(?:github\.com|[\w.-]+\.github\.io|huggingface\.co|hf\.co|b-61j\.pages\.dev)$",
    re.I,
)
_TITLE_MAX = 400
_FOOTER_LINE_MAX = 60  # the lines of a page footer after the last paper are short
_PAGE_AHEAD = timedelta(days=1)  # how far a page's date may be ahead of the file's local time
# A yearless page date is in the year after the latest year its paper dates write, when
# this many of them write one (or when the file's time would put it before them): the page
# says when it was seen, where the file's time is that of a copy (a clone, a backup)
_YEARS_TRUSTED = 3
_DATE_LINE_MAX = 40  # "September 30, 2024 1,204" and the "Daily Papers" header are shorter
_LEAD_MAX = 10  # lines before the page header that are skipped (with a warning)


@dataclass(frozen=True, slots=True)
class DropParse:
    """What one drop file yielded."""

    papers: list[Paper]
    warnings: list[str] = field(default_factory=list)
    page_date: date | None = None
    entries: int = 0


def find_code_urls(text: str) -> tuple[str, ...]:
    """Code and project links in an abstract: github.com, *.github.io, huggingface.co."""
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(_URL_TRAIL)
        host = url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0]
        if _CODE_HOSTS.match(host) and url not in found:
            found.append(url)
    return tuple(found)


def resolve_yearless(month: int, day: int, *, not_after: date) -> date | None:
    """The latest (month, day) not after ``not_after`` (Feb 29 looks back to a leap year)."""
    for year in range(not_after.year, not_after.year - 9, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= not_after:
            return candidate
    return None


def parse_upvotes(text: str) -> int | None:
    """An upvote count as printed: ``4``, ``1,204``, ``1.204`` or ``1 204`` (thousands
    separators: a count has no fraction), ``1.2k`` / ``1,2k`` (1200), ``1.5M``; None for
    a count that reads two ways or none (``1.2``, ``1,20``, ``1,204.5``)."""
    text = " ".join(text.split())  # no-break and narrow spaces as spaces
    if text.isascii() and text.isdigit():
        return int(text)
    if _GROUPED.match(text):
        return int(re.sub(r"\D", "", text))
    short = _SHORT.match(text)
    if short is not None:
        number = Decimal(short.group("num").replace(",", "."))
        return int((number * _UNITS[short.group("unit").lower()]).to_integral_value())
    return None


def _parse_date_line(text: str) -> tuple[int, int, int | None, str | None] | None:
    """(month, day, year, the upvote count's text) of a date line, else None."""
    match = _DATE.match(text)
    if not match:
        return None
    month = _MONTHS.get(match.group("mon").lower())
    day = int(match.group("day"))
    if month is None or not 1 <= day <= 31:
        return None
    year = int(match.group("year")) if match.group("year") else None
    return month, day, year, match.group("upvotes")


def _is_count(line: str) -> bool:
    """A line that is an upvote count, readable or not (``12``, ``1,204``, ``1.2k``)."""
    return len(line) <= _COUNT_MAX_LEN and bool(_COUNT_LINE.match(line))


def _read_count(text: str | None, *, name: str, line: int, warnings: list[str]) -> int | None:
    """``parse_upvotes``, with a warning naming the file and line for a count that reads
    two ways or none (the count is then ignored; the date is kept)."""
    if text is None:
        return None
    votes = parse_upvotes(text)
    if votes is None:
        warnings.append(f"{name}:{line}: unreadable upvote count {text!r}; the count is ignored")
    return votes


def _organization(line: str) -> str:
    """``kyutai Kyutai`` -> ``Kyutai``: HF prints the org's handle, then its display name."""
    handle, _, name = line.partition(" ")
    squashed = re.sub(r"[\W_]+", "", name).casefold()
    if name and squashed and squashed == re.sub(r"[\W_]+", "", handle).casefold():
        return name.strip()
    return line


def _is_meta_start(texts: list[str], i: int) -> bool:
    """A meta block starts at i: ``·``, ``• N authors``, or an org line followed by ``·``."""
    if i >= len(texts):
        return False
    line = texts[i]
    if line == _DOT or (line[0] == "•" and _AUTHORS.match(line)):
        return True
    return i + 1 < len(texts) and texts[i + 1] == _DOT


def _ends_paragraph(text: str) -> bool:
    """A line ending as a paragraph does and a title seldom does: with ``.`` or a link."""
    return text[-1] == "." or bool(_URL.search(text.split()[-1]))


def _looks_complete(text: str) -> bool:
    return bool(text) and (text[-1] in ".!?)]\"'”’" or bool(_URL.search(text.split()[-1])))


def _split_lines(text: str) -> tuple[list[str], list[int]]:
    """Non-blank lines, stripped, with their 1-based line numbers.

    Lines end at LF, CRLF or CR only: ``str.splitlines`` also splits at U+2028, U+0085,
    form feeds…, which abstracts copied from PDFs carry inside a paragraph.
    """
    texts: list[str] = []
    numbers: list[int] = []
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if line:
            texts.append(line)
            numbers.append(number)
    return texts, numbers


def _header_key(line: str) -> str:
    """A line as compared with the header lines: case and white space (no-break too) folded."""
    return " ".join(line.split()).casefold()


def _header_start(texts: list[str]) -> int:
    """Where the page header starts: 0, or past a few lines copied before it (a browser's
    navigation, a note) when its ``Daily Papers`` line comes within the first lines."""
    for k, line in enumerate(texts[:_LEAD_MAX]):
        if _header_key(line) == HEADER_MARKER:
            while k > 0 and _header_key(texts[k - 1]) in HEADER_LINES:
                k -= 1
            return k
    return 0


def _header_end(texts: list[str], i: int) -> int | None:
    """The end of a page header starting at ``i`` (header lines holding ``Daily Papers``:
    a second page pasted into the same file), else None."""
    j = i
    marker = False
    while j < len(texts) and _header_key(texts[j]) in HEADER_LINES:
        marker = marker or _header_key(texts[j]) == HEADER_MARKER
        j += 1
    return j if marker else None


def _resolve_page_date(
    texts: list[str], numbers: list[int], pos: int, *, name: str, modified: datetime
) -> date | None:
    """The page date on line ``pos`` (None if it is no date line); a bad one raises."""
    head = _parse_date_line(texts[pos])
    if head is None:
        return None
    month, day, year, _ = head
    page_date: date | None
    if year is not None:
        try:
            page_date = date(year, month, day)
        except ValueError:
            page_date = None
    else:
        # a day's grace: a page saved in a time zone behind the page's (a cron job in
        # New York fetching the next UTC day's page at 8 pm) is this year's, not last year's
        page_date = resolve_yearless(month, day, not_after=modified.date() + _PAGE_AHEAD)
        written = _written_years(texts, pos + 1)
        page_year = max(written, default=MAXYEAR) + 1  # past MAXYEAR: no year to go by
        if (
            page_date is not None
            and page_year <= MAXYEAR
            and (len(written) >= _YEARS_TRUSTED or page_date.year < page_year)
        ):
            page_date = resolve_yearless(month, day, not_after=date(page_year, 12, 31))
    if page_date is None:
        raise ParseError(f"bad page date {texts[pos]!r}", source=name, line=numbers[pos])
    return page_date


def _written_years(texts: list[str], start: int) -> list[int]:
    """The years written in the paper dates of the page from line ``start`` on (to the next
    page header). The page writes a date's year only when it is not the year the page was
    seen in, so that year is after every one of them."""
    years: list[int] = []
    for text in texts[start:]:
        if len(text) > _DATE_LINE_MAX or not text[:1].isalpha():
            continue
        if _header_key(text) == HEADER_MARKER:
            break
        if (parsed := _parse_date_line(text)) and parsed[2] is not None:
            years.append(parsed[2])
    return years


def _page_date(
    texts: list[str], numbers: list[int], *, name: str, modified: datetime, start: int = 0
) -> tuple[int, bool, date | None]:
    """Skip the header; return (position after it, whether it was there, the page date)."""
    pos = start
    has_header = False
    while pos < len(texts) and _header_key(texts[pos]) in HEADER_LINES:
        has_header = has_header or _header_key(texts[pos]) == HEADER_MARKER
        pos += 1
    if pos >= len(texts) or not (has_header or pos == 0):
        return pos, has_header, None
    page_date = _resolve_page_date(texts, numbers, pos, name=name, modified=modified)
    return (pos + 1 if page_date is not None else pos), has_header, page_date


def parse_drop(text: str, *, name: str, modified: datetime) -> DropParse:
    """Parse a drop's text. ``modified`` (the file's mtime) dates the yearless page date."""
    if "\x00" in text:
        raise ParseError("binary data (NUL bytes), not a daily-papers text dump", source=name)
    texts, numbers = _split_lines(text.removeprefix("\ufeff"))
    if not texts:
        return DropParse(papers=[], warnings=[f"{name}: empty file, nothing to ingest"])
    start = _header_start(texts)
    pos, has_header, page_date = _page_date(
        texts, numbers, name=name, modified=modified, start=start
    )
    if not has_header and _DOT not in texts[pos:]:
        raise ParseError(
            "not a Hugging Face daily-papers dump (no 'Daily Papers' header, no paper meta blocks)",
            source=name,
            line=numbers[0],
        )
    reference = page_date or modified.date()
    papers: list[Paper] = []
    warnings: list[str] = []
    if start:
        warnings.append(f"{name}:{numbers[0]}: {start} line(s) before the page header skipped")
    entries = 0
    n = len(texts)
    i = pos
    last_meta = next(  # where the last meta block is: what comes after it is no paper's
        (k for k in range(n - 1, pos - 1, -1) if texts[k] == _DOT or _AUTHORS.match(texts[k])),
        -1,
    )
    while i < n:
        if (
            len(texts[i]) <= _HEADER_MAX
            and _header_key(texts[i]) in HEADER_LINES
            and (end := _header_end(texts, i)) is not None
        ):
            # another page's header (two days' pages in one file): its date dates its papers
            i = end
            if i < n:
                next_page = _resolve_page_date(texts, numbers, i, name=name, modified=modified)
                if next_page is not None:
                    reference = next_page
                    i += 1
            continue
        title = texts[i]
        title_line = numbers[i]
        entries += 1
        if len(title) > _TITLE_MAX or title == _DOT:
            raise ParseError(
                "expected a paper title, found a paragraph or a stray meta line",
                source=name,
                line=title_line,
            )
        j = i + 1
        abstract_parts: list[str] = []
        # The abstract: one paragraph, or (rarely) several before the meta block / next title.
        while j < n and not _is_meta_start(texts, j):
            if (
                abstract_parts
                and len(texts[j]) <= _TITLE_MAX
                and not (_is_meta_start(texts, j + 1) and _ends_paragraph(texts[j]))
            ):
                # a short line after the abstract: the next paper's title, unless the meta
                # block follows it at once and it ends like a sentence or a link (a closing
                # paragraph such as "Code: https://…"; a title with no abstract is rarer)
                break
            abstract_parts.append(texts[j])
            j += 1
        abstract = abstract_parts[0] if len(abstract_parts) == 1 else "\n\n".join(abstract_parts)
        authors_count: int | None = None
        organization: str | None = None
        published: date | None = None
        upvotes = 0
        complete = bool(abstract_parts)
        has_meta = _is_meta_start(texts, j)
        if has_meta:
            who = texts[j]
            if who != _DOT:
                match = _AUTHORS.match(who)
                if match:
                    authors_count = int(match.group("count"))
                else:
                    organization = _organization(who)
                j += 1
            if j < n and texts[j] == _DOT:
                j += 1
                dated = True
            else:  # the "·" line lost in a copy: a date right after "• N authors" is the date
                dated = (
                    authors_count is not None and j < n and _parse_date_line(texts[j]) is not None
                )
            if dated:
                parsed = _parse_date_line(texts[j]) if j < n else None
                if parsed is not None:
                    month, day, year, count = parsed
                    votes = _read_count(count, name=name, line=numbers[j], warnings=warnings)
                    if year is None:
                        published = resolve_yearless(month, day, not_after=reference)
                    else:
                        try:
                            published = date(year, month, day)
                        except ValueError:
                            warnings.append(f"{name}:{numbers[j]}: impossible date {texts[j]!r}")
                    upvotes = votes or 0
                    j += 1
                    if count is None and j < n and _is_count(texts[j]):
                        # the upvote count copied onto a line of its own (no title is a number)
                        upvotes = (
                            _read_count(texts[j], name=name, line=numbers[j], warnings=warnings)
                            or 0
                        )
                        j += 1
                elif j < n:
                    complete = j + 1 < n
                    warnings.append(f"{name}:{numbers[j]}: unreadable date {texts[j]!r}")
                    j += 1
                else:
                    complete = False
            else:
                complete = False
        elif j >= n and complete and not _looks_complete(abstract):
            complete = False
        if not complete and j >= n:
            warnings.append(f"{name}:{title_line}: last entry {title[:60]!r} is truncated; skipped")
            break
        if (
            not has_meta
            and i > last_meta
            and not _looks_complete(abstract)
            and all(len(line) <= _FOOTER_LINE_MAX for line in texts[i:])
        ):
            # short lines after the last meta block, none a sentence: the page's footer
            # copied with it ("System theme", "Company", "TOS"…), not papers
            warnings.append(
                f"{name}:{title_line}: {n - i} short line(s) after the last paper skipped"
                f" (no meta block, no abstract: a page footer?)"
            )
            break
        if not abstract_parts:
            warnings.append(f"{name}:{title_line}: entry {title[:60]!r} has no abstract")
        papers.append(
            Paper(
                title=title,
                abstract=abstract,
                authors_count=authors_count,
                organization=organization,
                published=published,
                upvotes=upvotes,
                urls=find_code_urls(abstract) if "http" in abstract else (),
                source=SourceRef(kind="drop", name=name, entry=str(entries - 1), line=title_line),
            )
        )
        i = j
    return DropParse(papers=papers, warnings=warnings, page_date=page_date, entries=entries)


def _bomless_utf16(data: bytes) -> str | None:
    """The codec of UTF-16 text saved without its BOM (``utf-16-le``/``-be``), told by its
    zero bytes: in mostly-ASCII text every other byte is 0, on one side only. None else."""
    head = data[:2000]
    if len(head) < 8 or len(head) % 2 or b"\0" not in head:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    if odd >= 0.7 * half and even <= 0.05 * half:
        return "utf-16-le"
    if even >= 0.7 * half and odd <= 0.05 * half:
        return "utf-16-be"
    return None


def decode_drop(data: bytes, *, name: str) -> str:
    """UTF-8 (with or without BOM), or UTF-16 with its BOM (Windows Notepad's "Unicode")
    or without it (told by its zero bytes), or a ``ParseError`` naming the file and the
    first bad byte."""
    codec = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None
    codec = codec or _bomless_utf16(data)
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError as exc:
            raise ParseError(
                f"not UTF-16 text (bad bytes at offset {exc.start})", source=name
            ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ParseError(
            f"not UTF-8 text (bad byte 0x{data[exc.start]:02x} at offset {exc.start})",
            source=name,
            line=line,
        ) from None


def parse_drop_bytes(data: bytes, *, name: str, modified: datetime) -> DropParse:
    """A drop file's bytes decoded (``decode_drop``) and parsed (``parse_drop``)."""
    return parse_drop(decode_drop(data, name=name), name=name, modified=modified)


def path_text(path: Path) -> str:
    """A drop's path as text to store and show: ``str(path)``, except that bytes of a name
    that are not UTF-8 (a legacy encoding: ``r\xe9sum\xe9.txt``) are written as ``\\xe9``
    escapes (as text they would be lone surrogates, which no database can store)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-f]{2})")


def drop_path(text: str) -> Path:
    """The path ``path_text`` wrote as ``text`` (its ``\\xe9`` escapes back to the bytes of
    the name), or ``text`` as a path when no such file exists (a name holding a backslash)."""
    if "\\x" not in text:
        return Path(text)
    raw = _ESCAPED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    path = Path(os.fsdecode(raw))
    return path if path.exists() or not Path(text).exists() else Path(text)


def read_drop(path: Path) -> DropParse:
    data = path.read_bytes()
    modified = datetime.fromtimestamp(path.stat().st_mtime)
    return parse_drop_bytes(data, name=path_text(path), modified=modified)
