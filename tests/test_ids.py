"""arXiv ids in every form a source writes them, and what is not an arXiv id."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digestbot.ids import (
    canonical_id,
    find_arxiv_id,
    find_doi,
    normalize_title,
    normalize_title_slow,
    paper_key,
    parse_arxiv_id,
)
from digestbot.models import Paper, SourceRef

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


# Ids as the code before symbol-only titles were handled made them (computed on main at
# e5acfe2, then hard-coded): they are stored in databases and the delivery ledger.
@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Attention Is All You Need", "t-4a1c934d3d98"),
        ("  LLaMA: Open and Efficient Foundation Language Models ", "t-0526a471380d"),
        ("GPT-4 Technical Report", "t-71c318f65131"),
        ("R2-D2: 3D & 2D", "t-6a6fba299c1b"),
        ("x", "t-2d711642b726"),
        ("Über die Theorie — “Quanten”", "t-6b69fba71a13"),
        ("深度学习的新方法", "t-6a3d0b2b8741"),
        ("Αναδρομικά δίκτυα", "t-fa2e182e283e"),
        # changed on purpose: its vowel signs and virama are kept now (was "ह न द प ठ…"):
        # the SHA-256 of "हिन्दी पाठ वर्गीकरण" itself (``test_spelling_marks.py``)
        ("हिन्दी पाठ वर्गीकरण", "t-7695a160975f"),
        ("ℌ𝔢𝔩𝔩𝔬 Ｗｏｒｌｄ", "t-b94d27b9934d"),
    ],
)
def test_title_ids_of_titles_with_letters_do_not_change(title: str, expected: str) -> None:
    feed = SourceRef(kind="feed", name="f", entry="g")
    assert canonical_id(title=title, arxiv_id=None) == expected
    assert Paper(title=title, abstract="any").id == expected
    # a link or an abstract never changes the id of a title with letters or digits
    paper = Paper(title=title, abstract="other", urls=("https://example.org/p/1",), source=feed)
    assert paper.id == expected


SYMBOL_TITLES = ["∇ ⊗ ∇", "???", "😀🚀", "🎉", "—", "∑∏∫", "⊕"]


def test_titles_of_symbols_only_give_distinct_ids() -> None:
    ids = {Paper(title=title, abstract="The same abstract.").id for title in SYMBOL_TITLES}
    assert len(ids) == len(SYMBOL_TITLES)
    # the id every one of them shared before
    assert "t-e3b0c44298fc" not in ids
    one, other = Paper(title="???", abstract="First paper."), Paper(title="???", abstract="Other.")
    assert one.id != other.id


def test_titles_in_other_scripts_keep_their_letters() -> None:
    assert normalize_title("深度学习") == "深度学习"
    assert normalize_title("Ὀδύσσεια") == "ὀδύσσεια"
    assert Paper(title="深度学习", abstract="a").id != Paper(title="强化学习", abstract="a").id
    assert Paper(title="Ἰλιάς", abstract="a").id != Paper(title="Ὀδύσσεια", abstract="a").id


def test_a_symbol_title_recurring_keeps_its_id() -> None:
    feed = SourceRef(kind="feed", name="blog", entry="g1")
    drop = SourceRef(kind="drop", name="a.txt", entry="0", line=3)
    # a drop entry seen again (in another drop) with the same text
    assert (
        Paper(title="∇ ⊗ ∇", abstract="We  study it.", source=drop).id
        == Paper(title=" ∇ ⊗ ∇ ", abstract="We study it.\n").id
    )
    # a feed item keyed by its link: an edited description, a fragment or a final slash
    first = Paper(title="???", abstract="v1", urls=("https://Blog.example.org/p/7",), source=feed)
    again = Paper(
        title="???", abstract="v2", urls=("https://blog.example.org/p/7/#x",), source=feed
    )
    assert first.id == again.id
    elsewhere = Paper(
        title="???", abstract="v1", urls=("https://blog.example.org/p/8",), source=feed
    )
    assert elsewhere.id != first.id
    # a drop's links are code links of its abstract, which other papers share: not its key
    repo = ("https://github.com/org/shared",)
    assert (
        Paper(title="???", abstract="One.", urls=repo, source=drop).id
        != Paper(title="???", abstract="Two.", urls=repo, source=drop).id
    )


@given(st.text(max_size=40))
def test_a_fallback_key_never_equals_a_normalised_title(title: str) -> None:
    key = paper_key(title, abstract="a")
    assert key == normalize_title(title) or ":" in key
    assert ":" not in normalize_title(title)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://doi.org/10.48550/arXiv.2411.17700", ("2411.17700", None)),
        ("http://dx.doi.org/10.48550/ARXIV.2411.17700v2", ("2411.17700", 2)),
        ("https://doi.org/10.48550%2FarXiv.2411.17700?via=feed#top", ("2411.17700", None)),
        ("doi:10.48550/arXiv.2411.17700", ("2411.17700", None)),
        ("10.48550/arXiv.cond-mat/0412498", ("cond-mat/0412498", None)),
        ("https://doi.org/10.1145/2411.17700", None),  # another DOI holding the same digits
        ("https://doi.org/10.48550/arXiv.2411.17700/extra", None),
        ("doi:10.1000/182", None),
    ],
)
def test_arxivs_doi_is_an_arxiv_id(text: str, expected: tuple[str, int | None] | None) -> None:
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    ("tex", "plain"),
    [
        ('Schr\\"odinger Equations', "Schrödinger Equations"),
        ("Erd\\H{o}s--R\\'{e}nyi Graphs", "Erdős–Rényi Graphs"),
        ("G{\\\"o}del and Ap\\'ery", "Gödel and Apéry"),
        ("Fa\\c{c}ade of \\v{S}koda", "Façade of Škoda"),
        ("Stra\\ss e of \\AA ngstr\\\"om and \\L{}\\'od\\'z", "Straße of Ångström and Łódź"),
        ('Na\\"{\\i}ve Bayes', "Naïve Bayes"),
    ],
)
def test_tex_accents_of_arxiv_titles_normalise_as_their_letters(tex: str, plain: str) -> None:
    assert normalize_title(tex) == normalize_title(plain)
    assert canonical_id(title=tex, arxiv_id=None) == canonical_id(title=plain, arxiv_id=None)


def test_tex_commands_that_are_no_accents_are_read_as_maths() -> None:
    """Not eaten by the accent fold: Greek letters are letters, named operators words,
    other commands punctuation (``test_tex_maths.py``)."""
    assert normalize_title("$\\alpha$-VAE with \\log n and \\cite{x}") == "α vae with log n and x"
    assert normalize_title("\\omega-\\int") == "ω"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("doi:10.1002/anie.202401234", "10.1002/anie.202401234"),
        ("10.1038/s41586-024-0001-2", "10.1038/s41586-024-0001-2"),
        ("https://doi.org/10.1000/XYZ.1", "10.1000/xyz.1"),
        ("https://onlinelibrary.wiley.com/doi/abs/10.1002/anie.1?af=R", "10.1002/anie.1"),
        ("https://pubs.acs.org/doi/10.1021/jacs.4c01234", "10.1021/jacs.4c01234"),
        ("https://www.nature.com/articles/s41586-024-0001-2", None),
        ("https://journal.example/10.1000/not-a-doi-path", None),
        ("oai:arXiv.org:2411.17700v1", None),
    ],
)
def test_dois_are_read_from_their_forms(text: str, expected: str | None) -> None:
    assert find_doi(text) == expected


def test_a_generic_title_is_keyed_by_its_doi_else_its_link_else_its_text() -> None:
    assert paper_key("Editorial", link="https://j.example/e/1", doi="10.1/E") == "doi:10.1/e"
    assert paper_key("Editorial", link="https://j.example/e/1") == "url:https://j.example/e/1"
    assert paper_key("EDITORIAL", abstract="x").startswith("text:")
    assert paper_key("Editorial: AI in Medicine", link="https://j.example/e/1") == (
        "editorial ai in medicine"
    )


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://ar5iv.labs.arxiv.org/html/2411.17700", ("2411.17700", None)),
        ("https://ar5iv.org/abs/2411.17700", ("2411.17700", None)),
        ("https://ar5iv.labs.arxiv.org/html/2411.17700v2#S3", ("2411.17700", 2)),
        ("https://ar5iv-mirror.example/html/2411.17700", None),
        ("https://notar5iv.org/html/2411.17700", None),
    ],
)
def test_arxivs_html_renderings_give_the_arxiv_id(
    link: str, expected: tuple[str, int | None] | None
) -> None:
    # a blog or aggregator item linking arXiv's HTML rendering is that arXiv paper
    assert parse_arxiv_id(link) == expected
