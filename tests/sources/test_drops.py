"""The drop parser on the samples and on the messy inputs a drops folder sees."""

from __future__ import annotations

import contextlib
import os
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestbot.errors import ParseError
from digestbot.ids import normalize_title
from digestbot.sources.drops import (
    decode_drop,
    find_code_urls,
    parse_drop,
    parse_drop_bytes,
    read_drop,
)
from tests.conftest import SEEDS

MODIFIED = datetime(2026, 11, 23, 12, 0)
HF = "https://hugging" + "face.co"  # the Hugging Face hub
HEADER = (
    "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"
    "byAK and the research community\n\nJan 8\n\n"
)
ENTRY_A = (
    "Alpha Attention: A Title\n\nWe study alpha attention. Code: https://github.com/a/alpha.\n\n"
    "  • 6 authors\n·\nJun 17, 2022\n"
)
ENTRY_B = "Beta Models\n\nBeta models are studied here.\n\n  • 2 authors\n·\nSep 3, 2024 4\n"
ENTRY_C = "Gamma Without Meta\n\nA paper whose meta block is missing.\n"
ENTRY_ORG = "Delta by an Org\n\nOrganisations publish too.\n\nkyutai Kyutai\n·\nOct 23 1\n"


def parse(text: str, modified: datetime = MODIFIED):
    return parse_drop(text, name="drop.txt", modified=modified)


def sample_papers():
    return [p for path in sorted(SEEDS.glob("*.txt")) for p in read_drop(path).papers]


def test_samples_hold_188_entries_and_186_distinct_papers() -> None:
    papers = sample_papers()
    assert len(papers) == 188
    assert len({normalize_title(p.title) for p in papers}) == 186


def test_samples_have_exactly_three_papers_without_meta_block() -> None:
    no_meta = [p for p in sample_papers() if p.published is None]
    assert sorted(p.title for p in no_meta) == [
        "RewardDance: Reward Scaling in Visual Generation",
        "Robust Layerwise Scaling Rules by Proper Weight Decay Tuning",
        "Video-LMM Post-Training: A Deep Dive into Video Reasoning with Large Multimodal Models",
    ]
    assert all(p.authors_count is None and p.upvotes == 0 and p.abstract for p in no_meta)


def test_sample_organisation_line_and_trailing_upvotes() -> None:
    (arc,) = [p for p in sample_papers() if p.title.startswith("ARC-Encoder")]
    assert arc.organization == "Kyutai"
    assert arc.authors_count is None
    assert arc.upvotes == 1
    assert arc.urls == (
        "https://github.com/kyutai-labs/ARC-Encoder",
        "https://b-61j.pages.dev/collections/kyutai/arc-encoders-68ee18787301407d60a57047",
    )


def test_meta_block_fields() -> None:
    result = parse(HEADER + ENTRY_A + "\n" + ENTRY_B + "\n" + ENTRY_C + "\n" + ENTRY_ORG)
    a, b, c, d = result.papers
    assert (a.title, a.authors_count, a.published, a.upvotes) == (
        "Alpha Attention: A Title",
        6,
        date(2022, 6, 17),
        0,
    )
    assert a.urls == ("https://github.com/a/alpha",)
    assert (b.authors_count, b.published, b.upvotes) == (2, date(2024, 9, 3), 4)
    assert (c.title, c.published, c.authors_count) == ("Gamma Without Meta", None, None)
    assert c.abstract == "A paper whose meta block is missing."
    assert (d.organization, d.upvotes) == ("Kyutai", 1)
    assert [p.source.entry for p in result.papers if p.source] == ["0", "1", "2", "3"]
    assert a.source is not None and a.source.line == 13


def test_page_date_is_the_latest_such_date_not_after_the_file_time() -> None:
    assert parse(HEADER + ENTRY_A, datetime(2026, 3, 1)).page_date == date(2026, 1, 8)
    assert parse(HEADER + ENTRY_A, datetime(2026, 1, 6)).page_date == date(2025, 1, 8)


def test_a_page_dated_a_day_after_the_file_time_is_this_years() -> None:
    # the next UTC day's page saved at 8 pm in New York (file time Jan 7, local): it was
    # dated a year back, and every yearless paper date on it with it
    result = parse(HEADER + ENTRY_ORG + "\n" + ENTRY_B, datetime(2026, 1, 7, 20, 0))
    assert result.page_date == date(2026, 1, 8)
    assert [p.published for p in result.papers] == [date(2025, 10, 23), date(2024, 9, 3)]
    on_the_day = HEADER + "Zeta\n\nAbstract.\n\n  • 1 author\n·\nJan 8 3\n"
    assert parse(on_the_day, datetime(2026, 1, 7, 20, 0)).papers[0].published == date(2026, 1, 8)


def test_yearless_paper_date_takes_the_page_year() -> None:
    # page "Jan 8" seen in March 2026: "Oct 23" cannot be after the page, so it is 2025
    result = parse(HEADER + ENTRY_ORG, datetime(2026, 3, 1))
    assert result.papers[0].published == date(2025, 10, 23)
    page_nov = HEADER.replace("Jan 8", "Nov 27")
    result = parse(page_nov + ENTRY_ORG, datetime(2026, 12, 1))
    assert result.papers[0].published == date(2026, 10, 23)


def test_sample_yearless_dates_use_the_file_time(tmp_path: Path) -> None:
    copy = tmp_path / "002.txt"
    copy.write_bytes((SEEDS / "002_e8a5d91da582b4b6.txt").read_bytes())
    os.utime(copy, (datetime(2025, 12, 1).timestamp(), datetime(2025, 12, 1).timestamp()))
    result = read_drop(copy)
    assert result.page_date == date(2025, 11, 27)
    (arc,) = [p for p in result.papers if p.title.startswith("ARC-Encoder")]
    assert arc.published == date(2025, 10, 23)


def test_a_copied_sample_is_dated_by_the_years_its_page_writes(tmp_path: Path) -> None:
    # sample 003 (page "Nov 10") copied a year after it was saved: its dates write years up
    # to 2024, and the page leaves out only the year it was seen in, so the page is 2025's.
    # NaLaFormer ("Jun 26", no year) is arXiv 2506.21137: June 2025, not 2026.
    copy = tmp_path / "003.txt"
    copy.write_bytes((SEEDS / "003_e69bb1ed9e59af63.txt").read_bytes())
    stamp = datetime(2026, 12, 6, 9, 0).timestamp()
    os.utime(copy, (stamp, stamp))
    result = read_drop(copy)
    assert result.page_date == date(2025, 11, 10)
    (nala,) = [p for p in result.papers if p.title.startswith("NaLaFormer")]
    assert nala.published == date(2025, 6, 26)


def test_a_page_with_few_written_years_keeps_the_file_time() -> None:
    # a daily page: one old paper writes its year (2022); the file time dates the page
    two_old = HEADER + ENTRY_A + "\n" + ENTRY_B + "\n" + ENTRY_ORG
    assert parse(two_old, datetime(2026, 3, 1)).page_date == date(2026, 1, 8)
    # three written years are the page's word: the year after the latest (2024)
    three = two_old + "\n" + ENTRY_B.replace("Beta Models", "Beta Again")
    result = parse(three, datetime(2026, 3, 1))
    assert result.page_date == date(2025, 1, 8)
    assert result.papers[2].published == date(2024, 10, 23)  # "Oct 23" before "Jan 8, 2025"


def test_a_file_time_before_the_years_written_gives_way_to_them() -> None:
    # a file time of 2020 (a clock reset, a restored backup) and a paper of 2024 on the page
    result = parse(HEADER + ENTRY_B + "\n" + ENTRY_ORG, datetime(2020, 5, 1))
    assert result.page_date == date(2025, 1, 8)
    assert [p.published for p in result.papers] == [date(2024, 9, 3), date(2024, 10, 23)]


def test_paper_dates_in_the_last_possible_year_leave_the_page_to_the_file_time() -> None:
    # "Sep 3, 9999" three times: the year after it cannot be a date; the file time rules
    page = HEADER + "".join(
        ENTRY_B.replace("Beta", f"Beta {i}").replace("2024", "9999") for i in range(3)
    )
    result = parse(page, datetime(2026, 3, 1))
    assert result.page_date == date(2026, 1, 8)
    assert [p.published for p in result.papers] == [date(9999, 9, 3)] * 3


def test_a_second_page_in_the_file_counts_only_its_own_years() -> None:
    old_page = HEADER + ENTRY_A + "\n" + ENTRY_B + "\n" + ENTRY_B.replace("Beta", "Eta")
    second = HEADER.replace("Jan 8", "Jan 9") + ENTRY_ORG
    result = parse(old_page + "\n" + second, datetime(2026, 3, 1))
    assert result.page_date == date(2025, 1, 8)  # three written years, the latest 2024
    # the second page writes no year: the file time dates it
    assert result.papers[-1].published == date(2025, 10, 23)


def test_bom_crlf_trailing_spaces_and_blank_runs_parse_the_same() -> None:
    clean = parse(HEADER + ENTRY_A + "\n" + ENTRY_B)
    messy_text = "\ufeff" + (HEADER + ENTRY_A + "\n\n\n\n" + ENTRY_B).replace("\n", "   \r\n")
    messy = parse_drop(
        decode_drop(messy_text.encode("utf-8"), name="m"), name="m", modified=MODIFIED
    )
    strip = [(p.title, p.abstract, p.authors_count, p.published, p.upvotes) for p in clean.papers]
    assert [
        (p.title, p.abstract, p.authors_count, p.published, p.upvotes) for p in messy.papers
    ] == strip


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\x1c", "\x1e"])
def test_unicode_line_separators_inside_an_abstract_do_not_split_it(sep: str) -> None:
    # PDF copy-paste leaves U+2028, NEL, form feeds… inside paragraphs; only LF/CR end lines
    abstract = f"We study alpha attention.{sep}It is fast. Code: https://github.com/a/alpha."
    entry_a = f"Alpha Attention: A Title\n\n{abstract}\n\n  • 6 authors\n·\nJun 17, 2022\n"
    result = parse(HEADER + entry_a + "\n" + ENTRY_B)
    assert [(p.title, p.abstract, p.authors_count, p.published) for p in result.papers] == [
        ("Alpha Attention: A Title", abstract, 6, date(2022, 6, 17)),
        ("Beta Models", "Beta models are studied here.", 2, date(2024, 9, 3)),
    ]
    assert result.warnings == []


@pytest.mark.parametrize("space", ["\u00a0", "\u202f", "\t", "  "])
def test_dates_with_no_break_or_other_spaces_parse(space: str) -> None:
    # a page copied from a browser can keep the no-break spaces of its HTML
    entry_a = ENTRY_A.replace("Jun 17, 2022", f"Jun{space}17,{space}2022")
    entry_b = ENTRY_B.replace("Sep 3, 2024 4", f"Sep{space}3, 2024{space}4")
    header = HEADER.replace("Jan 8", f"Jan{space}8").replace("Daily Papers", f"Daily{space}Papers")
    result = parse(header + entry_a + "\n" + entry_b)
    assert result.page_date == date(2026, 1, 8)
    assert [(p.published, p.upvotes) for p in result.papers] == [
        (date(2022, 6, 17), 0),
        (date(2024, 9, 3), 4),
    ]
    assert result.warnings == []


def test_upvotes_on_a_line_of_their_own_after_the_date() -> None:
    # the count copied below the date: it was read as the next paper's title ("4"), and
    # that paper's title as its abstract
    entry_b = ENTRY_B.replace("Sep 3, 2024 4", "Sep 3, 2024\n4")
    entry_a = ENTRY_A.replace("Jun 17, 2022", "Jun 17, 2022\n\n12")
    result = parse(HEADER + entry_a + "\n" + entry_b + "\n" + ENTRY_ORG)
    assert [(p.title, p.abstract, p.published, p.upvotes) for p in result.papers] == [
        (
            "Alpha Attention: A Title",
            "We study alpha attention. Code: https://github.com/a/alpha.",
            date(2022, 6, 17),
            12,
        ),
        ("Beta Models", "Beta models are studied here.", date(2024, 9, 3), 4),
        ("Delta by an Org", "Organisations publish too.", date(2025, 10, 23), 1),
    ]
    assert result.warnings == []


def test_old_mac_cr_line_ends_parse_like_lf() -> None:
    text = HEADER + ENTRY_A + "\n" + ENTRY_B
    lf = [(p.title, p.abstract, p.published, p.source) for p in parse(text).papers]
    assert [
        (p.title, p.abstract, p.published, p.source) for p in parse(text.replace("\n", "\r")).papers
    ] == lf
    assert len(lf) == 2


def test_lines_before_the_page_header_are_skipped_with_a_warning() -> None:
    # a page saved from a browser starts with its navigation; it was parsed as papers
    # ("Get trending papers…" with the abstract "Subscribe", a paper titled "Jan 8")
    clean = parse(HEADER + ENTRY_A + "\n" + ENTRY_B)
    result = parse("Hugging Face\nModels\nDatasets\n\n" + HEADER + ENTRY_A + "\n" + ENTRY_B)
    assert [(p.title, p.abstract, p.published) for p in result.papers] == [
        (p.title, p.abstract, p.published) for p in clean.papers
    ]
    assert [p.title for p in result.papers] == ["Alpha Attention: A Title", "Beta Models"]
    assert result.page_date == date(2026, 1, 8)
    assert result.warnings == ["drop.txt:1: 3 line(s) before the page header skipped"]


def test_two_pages_in_one_file_each_date_their_own_papers() -> None:
    # two days' pages pasted into one file, across the new year
    first = (
        HEADER.replace("Jan 8", "Dec 31")
        + "Old Paper\n\nAn abstract.\n\n  • 2 authors\n·\nDec 30\n\n"
    )
    second = (
        HEADER.replace("Jan 8", "Jan 2")
        + "New Paper\n\nAnother one.\n\n  • 3 authors\n·\nJan 1 5\n"
    )
    result = parse(first + second, modified=datetime(2026, 1, 3, 9, 0))
    assert [(p.title, p.abstract, p.published, p.upvotes) for p in result.papers] == [
        ("Old Paper", "An abstract.", date(2025, 12, 30), 0),
        ("New Paper", "Another one.", date(2026, 1, 1), 5),  # not 2025: its page is Jan 2
    ]
    assert result.page_date == date(2025, 12, 31)
    assert result.entries == 2
    assert result.warnings == []


@pytest.mark.parametrize(
    "tail",
    [
        "Epsilon Title Only\n",
        "Epsilon Title\n\nThe abstract stops mid sen",
        "Epsilon Title\n\nA complete abstract.\n\n  • 3 authors\n",
        "Epsilon Title\n\nA complete abstract.\n\n  • 3 authors\n·\n",
        "Epsilon Title\n\nA complete abstract.\n\n  • 3 authors\n·\nJun 1, 20",
    ],
)
def test_truncated_last_entry_is_reported_and_complete_ones_kept(tail: str) -> None:
    result = parse(HEADER + ENTRY_A + "\n" + ENTRY_B + "\n" + tail)
    assert [p.title for p in result.papers] == ["Alpha Attention: A Title", "Beta Models"]
    assert any("truncated" in w and ":" in w for w in result.warnings)


def test_complete_last_entry_without_meta_is_kept() -> None:
    result = parse(HEADER + ENTRY_A + "\n" + ENTRY_C)
    assert [p.title for p in result.papers][-1] == "Gamma Without Meta"
    assert result.warnings == []


def test_empty_file_warns_and_yields_nothing() -> None:
    for text in ("", "\n\n  \r\n", "\ufeff"):
        result = parse(text)
        assert result.papers == []
        assert "empty" in result.warnings[0]


def test_not_utf8_is_a_clear_error_naming_the_file() -> None:
    with pytest.raises(ParseError) as err:
        decode_drop(b"Title\n\nabc \xff\xfe def\n", name="seeds/bad.txt")
    assert err.value.source == "seeds/bad.txt"
    assert "not UTF-8" in str(err.value) and "seeds/bad.txt:3" in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "# My notes\n\nSome markdown file that happens to be in the folder.\n",
        "just one line",
        "\x00\x01binary",
        '{"json": true}',
    ],
)
def test_not_a_daily_papers_dump_is_a_clear_error(text: str) -> None:
    with pytest.raises(ParseError) as err:
        parse(text)
    assert str(err.value).startswith("drop.txt")


def test_code_urls_found_and_cleaned() -> None:
    text = (
        "See https://github.com/org/repo. and (https://org.github.io/page), "
        f"{HF}/datasets/x/y; not https://example.com/z or https://hf.co/m/n, "
        "https://github.com.evil.example/x."
    )
    assert find_code_urls(text) == (
        "https://github.com/org/repo",
        "https://org.github.io/page",
        f"{HF}/datasets/x/y",
        "https://hf.co/m/n",
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(
                [
                    "·",
                    "  • 3 authors",
                    "Jan 8",
                    "Sep 3, 2024 4",
                    "Daily Papers",
                    "",
                    "kyutai Kyutai",
                ]
            ),
            st.text(min_size=401, max_size=450),
        ),
        max_size=25,
    )
)
def test_any_text_gives_papers_or_a_parse_error(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        result = parse(text)
    except ParseError as exc:
        assert exc.source == "drop.txt"
        return
    for paper in result.papers:
        assert paper.title and paper.id


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_parse_error(data: bytes) -> None:
    try:
        text = decode_drop(data, name="b.txt")
    except ParseError:
        return
    with contextlib.suppress(ParseError):
        parse_drop(text, name="b.txt", modified=MODIFIED)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_drop_saved_as_utf16_with_its_bom_parses_like_utf8(encoding: str) -> None:
    # Windows Notepad's "Unicode" is UTF-16 with a BOM
    text = (SEEDS / "000_ca14cdb193ee54f8.txt").read_text("utf-8")
    data = text.encode(encoding)
    if encoding != "utf-16":  # the plain codec writes its own BOM
        data = "\ufeff".encode(encoding) + data
    as_utf16 = parse_drop_bytes(data, name="drop.txt", modified=MODIFIED)
    assert as_utf16.papers == parse(text).papers and len(as_utf16.papers) == 11


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_a_drop_saved_as_utf16_without_a_bom_parses_like_utf8(encoding: str) -> None:
    # it was "not UTF-8 text" or "not a daily-papers dump" (its zero bytes read as text)
    text = (SEEDS / "000_ca14cdb193ee54f8.txt").read_text("utf-8")
    as_utf16 = parse_drop_bytes(text.encode(encoding), name="drop.txt", modified=MODIFIED)
    assert as_utf16.papers == parse(text).papers and len(as_utf16.papers) == 11


def test_utf8_text_with_a_few_zero_bytes_is_not_taken_for_utf16() -> None:
    data = b"Daily Papers\n\nJan 8\n\nA title\x00 here\n"
    assert decode_drop(data, name="drop.txt") == data.decode()


def test_odd_length_utf16_is_a_clear_error() -> None:
    with pytest.raises(ParseError) as err:
        decode_drop("\ufeffDaily Papers".encode("utf-16-le")[:-1], name="drop.txt")
    assert str(err.value).startswith("drop.txt: not UTF-16 text")


def test_a_meta_block_that_lost_its_dot_line_keeps_its_date_and_the_next_paper() -> None:
    no_dot = "Beta Models\n\nBeta models are studied here.\n\n  • 2 authors\nSep 3, 2024 4\n\n"
    result = parse(HEADER + no_dot + ENTRY_A)
    assert [(p.title, p.published, p.upvotes) for p in result.papers] == [
        ("Beta Models", date(2024, 9, 3), 4),
        ("Alpha Attention: A Title", date(2022, 6, 17), 0),
    ]
    assert result.warnings == []


@pytest.mark.parametrize(
    "footer",
    [
        "System theme\n\nCompany\n\nTOS\n\nPrivacy\n\nAbout\n\nJobs\n",
        "← Previous\n\nNext →\n\nSystem theme\n",
    ],
)
def test_a_page_footer_copied_after_the_last_paper_is_skipped_with_a_warning(
    footer: str,
) -> None:
    result = parse(HEADER + ENTRY_A + "\n" + ENTRY_B + "\n" + footer)
    assert [p.title for p in result.papers] == ["Alpha Attention: A Title", "Beta Models"]
    (warning,) = result.warnings
    assert warning.startswith("drop.txt:") and "after the last paper skipped" in warning


def test_a_short_closing_paragraph_stays_in_its_abstract() -> None:
    entry = (
        "Beta Models\n\nBeta models are studied here.\n\nCode: https://github.com/b/beta\n\n"
        "  • 2 authors\n·\nSep 3, 2024 4\n\n"
    )
    result = parse(HEADER + ENTRY_A + "\n" + entry)
    assert [(p.title, p.authors_count, p.upvotes) for p in result.papers] == [
        ("Alpha Attention: A Title", 6, 0),
        ("Beta Models", 2, 4),
    ]
    beta = result.papers[1]
    assert beta.abstract == "Beta models are studied here.\n\nCode: https://github.com/b/beta"
    assert beta.urls == ("https://github.com/b/beta",)
    assert result.warnings == []


@pytest.mark.parametrize(
    ("count", "upvotes"),
    [
        ("1,204", 1204),
        ("1.204", 1204),  # a thousands dot: no paper has a fraction of an upvote
        ("1 204", 1204),
        ("1\u202f204", 1204),  # a narrow no-break space, as a browser copies it
        ("12,345,678", 12345678),
        ("1.2k", 1200),
        ("1,2k", 1200),
        ("1.25K", 1250),
        ("3k", 3000),
        ("1.5M", 1500000),
    ],
)
def test_upvote_counts_with_separators_or_a_unit(count: str, upvotes: int) -> None:
    # "Sep 3, 2024 1,204" was an "unreadable date": the paper lost its date and its count
    for date_line, published in (
        (f"Sep 3, 2024 {count}", date(2024, 9, 3)),
        (f"Sep 3, 2024\n{count}", date(2024, 9, 3)),
        (f"Sep 3 {count}", date(2025, 9, 3)),  # no year: the last Sep 3 before the page's Jan 8
    ):
        entry = ENTRY_B.replace("Sep 3, 2024 4", date_line)
        result = parse(HEADER + entry + "\n" + ENTRY_ORG)
        assert [(p.title, p.published, p.upvotes) for p in result.papers] == [
            ("Beta Models", published, upvotes),
            ("Delta by an Org", date(2025, 10, 23), 1),
        ]
        assert result.warnings == []


@pytest.mark.parametrize("count", ["1.2", "1,20", "12,3456", "1.2.3k", "1,204.5"])
def test_an_ambiguous_upvote_count_is_ignored_with_a_warning_naming_file_and_line(
    count: str,
) -> None:
    for entry in (
        ENTRY_B.replace("Sep 3, 2024 4", f"Sep 3, 2024 {count}"),
        ENTRY_B.replace("Sep 3, 2024 4", f"Sep 3, 2024\n{count}"),
    ):
        text = HEADER + entry + "\n" + ENTRY_ORG
        result = parse(text)
        assert [(p.title, p.published, p.upvotes) for p in result.papers] == [
            ("Beta Models", date(2024, 9, 3), 0),
            ("Delta by an Org", date(2025, 10, 23), 1),
        ]
        line = text.split("\n").index(count if "\n" + count in entry else f"Sep 3, 2024 {count}")
        assert result.warnings == [
            f"drop.txt:{line + 1}: unreadable upvote count {count!r}; the count is ignored"
        ]


def test_a_numeric_title_after_a_date_is_not_taken_for_an_upvote_count() -> None:
    entry = ENTRY_B.replace("Sep 3, 2024 4", "Sep 3, 2024")
    result = parse(HEADER + entry + "\n1, 2, 3\n\nCounting papers.\n\n  • 1 author\n·\nOct 2 5\n")
    assert [(p.title, p.upvotes) for p in result.papers] == [("Beta Models", 0), ("1, 2, 3", 5)]
    assert result.warnings == []
