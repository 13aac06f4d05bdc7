"""arXiv ids in every form a source writes them, and what is not an arXiv id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestbot.ids import (
    canonical_id,
    find_arxiv_id,
    normalize_title,
    normalize_title_slow,
    parse_arxiv_id,
)

HF = "https://huggingface" + ".co"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2411.17700v1", ("2411.17700", 1)),
        ("2411.17700", ("2411.17700", None)),
        ("arXiv:2411.17700v3", ("2411.17700", 3)),
        ("oai:arXiv.org:2411.17700v1", ("2411.17700", 1)),
        ("http://arxiv.org/abs/2411.17700v2", ("2411.17700", 2)),
        ("https://arxiv.org/abs/2411.17700", ("2411.17700", None)),
        ("https://arxiv.org/pdf/2411.17700v2", ("2411.17700", 2)),
        ("https://arxiv.org/pdf/2411.17700v2.pdf", ("2411.17700", 2)),
        ("https://export.arxiv.org/abs/2411.17700v12", ("2411.17700", 12)),
        ("cond-mat/0412498v1", ("cond-mat/0412498", 1)),
        ("http://arxiv.org/abs/cond-mat/0412498v1", ("cond-mat/0412498", 1)),
        ("oai:arXiv.org:hep-th/9901001", ("hep-th/9901001", None)),
        ("math.GT/0309136", ("math/0309136", None)),
        ("0704.0001", ("0704.0001", None)),
        ("1501.00001v1", ("1501.00001", 1)),
        (f"{HF}/papers/2411.17700", ("2411.17700", None)),
        ("  2411.17700v1\n", ("2411.17700", 1)),
    ],
)
def test_every_form_gives_the_versionless_id_and_the_version(
    text: str, expected: tuple[str, int | None]
) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "https://example.com/papers/2411.17700",  # not an arXiv host
        "https://arxiv.org/api/errors#incorrect_id_format_for_abc",
        "https://arxiv.org/list/cs.LG/recent",
        "1234.5678",  # month 34
        "2413.12345",  # month 13
        "2411.177",  # too few digits
        "2411.1770012",  # too many digits
        "version 2411.17700 of something",  # free text is not an id
        "foo/0412498",  # not an arXiv archive
        "cond-mat/04124",
        "t-0123456789ab",
    ],
)
def test_what_is_not_an_arxiv_id(text: str) -> None:
    assert parse_arxiv_id(text) is None


def test_a_reference_inside_free_text_is_found() -> None:
    assert find_arxiv_id("Title. (arXiv:1805.08875v1 [hep-ex] UPDATED)") == ("1805.08875", 1)
    assert find_arxiv_id("see 1805.08875 without the prefix") is None


def test_canonical_id_is_the_arxiv_id_else_a_title_key() -> None:
    assert canonical_id(title="Whatever", arxiv_id="2411.17700") == "2411.17700"
    by_title = canonical_id(title="Attention Is All You Need", arxiv_id=None)
    assert by_title.startswith("t-") and len(by_title) == 14
    assert by_title == canonical_id(title="attention is all you need!", arxiv_id=None)
    assert normalize_title("  Σ-Mem:  An   Online\tMemory ") == "σ mem an online memory"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Attention Is All You Need!", "attention is all you need"),
        ("  LaMamba-Diff:  Linear_Time\tModels ", "lamamba diff linear time models"),
        ("ﬁne-tuning Straße", "fine tuning strasse"),  # NFKC ligature, casefold ß
        ("Ｆｕｌｌ　Ｗｉｄｔｈ", "full width"),
        ("Café — naïve", "café naïve"),
        ("", ""),
        ("!!!", ""),
    ],
)
def test_normalize_title_folds_case_punctuation_and_space(title: str, expected: str) -> None:
    assert normalize_title(title) == expected


@given(st.text())
def test_normalize_title_fast_path_equals_the_reference(title: str) -> None:
    normalize_title.cache_clear()
    assert normalize_title(title) == normalize_title_slow(title)


@given(st.text(alphabet=st.characters(max_codepoint=127)))
def test_normalize_title_ascii_equals_the_reference(title: str) -> None:
    assert normalize_title(title) == normalize_title_slow(title)
