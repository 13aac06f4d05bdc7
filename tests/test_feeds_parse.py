"""RSS and Atom parsing on captured arXiv and community feeds (tests/fixtures/feeds)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digestbot.errors import SourceError
from digestbot.sources.feeds import FeedParse, parse_feed
from tests.feed_server import RssItem, arxiv_rss

FEEDS = Path(__file__).resolve().parent / "fixtures" / "feeds"
RSS_FIRST50 = "arxiv_rss_2024-11-28_all-archives_first50.xml"
RSS_MIXED = "arxiv_rss_2024-11-28_all-archives_items911-960.xml"


def parse(name: str) -> FeedParse:
    return parse_feed((FEEDS / name).read_bytes(), name="feed")


def test_arxiv_rss_items_carry_versionless_ids_authors_and_the_bare_abstract() -> None:
    parsed = parse(RSS_FIRST50)
    assert parsed.entries == 50 and len(parsed.items) == 50 and parsed.warnings == []
    first = parsed.items[0]
    assert first.paper.id == "2411.17700" and first.paper.arxiv_version == 1
    assert first.guid == "oai:arXiv.org:2411.17700v1"
    assert first.announce_type == "new"
    assert first.paper.title.startswith("Exploring the Impact of Generative AI")
    assert first.paper.abstract.startswith("This study investigates the influence")
    assert first.paper.authors == ("Jun Cui",)
    assert first.paper.published == date(2024, 11, 28)
    assert first.paper.extra["categories"] == ["cs.CY"]
    assert first.paper.link == "https://arxiv.org/abs/2411.17700"
    assert [i.paper.id for i in parsed.items][-1] == "2411.17749"
    assert not any("Announce Type" in i.paper.abstract for i in parsed.items)


def test_arxiv_rss_announce_types_and_replacements_keep_their_version() -> None:
    parsed = parse(RSS_MIXED)
    assert Counter(i.announce_type for i in parsed.items) == {"new": 16, "cross": 9, "replace": 25}
    first = parsed.items[0].paper
    assert first.authors == ("Matthew Hernandez", "Neel Patel", "Elena Salguero")
    replaced = {i.paper.id: i for i in parsed.items if i.is_replacement}
    assert replaced["1401.3665"].paper.arxiv_version == 4
    assert replaced["2207.08388"].paper.arxiv_version == 2


def test_legacy_rdf_feed_titles_flags_and_html_authors() -> None:
    parsed = parse("arxiv_rss_legacy-rdf_hep-ex_2018-05-23_excerpt.xml")
    assert [(i.paper.id, i.announce_type) for i in parsed.items] == [
        ("1805.08875", "new"),
        ("1805.09166", "cross"),
        (parsed.items[2].paper.id, "replace"),
    ]
    first = parsed.items[0].paper
    assert first.title == "Measurement of Transverse Single Spin Asymmetries"
    assert first.authors == ("Christopher Dilks (STAR Collaboration)",)
    assert first.abstract.startswith("In 2015 the first collisions") and "<p>" not in first.abstract
    assert first.arxiv_version == 1
    assert first.published == date(2018, 5, 24)  # the channel's dc:date, in UTC


def test_arxiv_api_atom_new_format() -> None:
    parsed = parse("arxiv_api_2026-04-12_search-testing_10-entries.xml")
    assert len(parsed.items) == 10
    first = parsed.items[0].paper
    assert (first.id, first.arxiv_version) == ("2202.12139", 1)
    assert first.authors == ("Mohit Kumar Ahuja", "Arnaud Gotlieb", "Helge Spieker")
    assert first.extra["primary_category"] == "cs.SE"
    assert "\n" not in first.abstract
    assert any("Aurora Ramírez" in i.paper.authors for i in parsed.items)


def test_arxiv_api_atom_legacy_format_with_old_style_ids() -> None:
    parsed = parse("arxiv_api_2016-10-09_legacy_au-del_maestro_10-entries.xml")
    papers = {i.paper.id: i.paper for i in parsed.items}
    assert len(papers) == 10
    old = papers["cond-mat/0412498"]
    assert old.arxiv_version == 1
    assert old.authors == ("Adrian Del Maestro", "Subir Sachdev")
    assert old.published == date(2004, 12, 19)
    assert "doi" in old.extra and "journal_ref" in old.extra


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("arxiv_rss_2024-11-28_error_bad-archive-name.xml", "Bad archive 'astroph'"),
        ("arxiv_api_2026-04-12_http400_incorrect-id-format.xml", "incorrect id format for abc"),
    ],
)
def test_arxiv_error_feeds_are_errors_with_arxivs_message(name: str, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        parse(name)
    assert message in caught.value.message
    assert caught.value.message.startswith("feed: arXiv")


@pytest.mark.parametrize(
    "name",
    [
        "arxiv_rss_2024-11-28_test-archive_empty.xml",
        "arxiv_rss_2026-08-01_cs.CL_weekend-empty.xml",
        "arxiv_api_2026-04-12_id-list_no-results.xml",
    ],
)
def test_empty_feeds_are_zero_papers_and_no_error(name: str) -> None:
    parsed = parse(name)
    assert parsed.items == [] and parsed.warnings == [] and parsed.entries == 0


def test_community_hf_rss_gets_arxiv_ids_from_links_and_drops_the_ai_summary() -> None:
    parsed = parse("hf_papers_community-rss_michaelmarkert_2026-08-22.xml")
    assert len(parsed.items) == 26
    first = parsed.items[0].paper
    assert first.id == "2608.19880" and first.arxiv_version is None
    assert first.abstract.startswith("LLM agents learn by interacting")
    assert first.extra["ai_summary"].startswith("EnvHarness and EnvRigger")
    assert first.authors == ()


GENERIC_ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>Lab blog</title><id>urn:lab</id><updated>2026-11-20T10:00:00Z</updated>
  <entry>
    <title type="html">Sparse &lt;b&gt;attention&lt;/b&gt; &amp;amp; you</title>
    <id>urn:lab:post-7</id>
    <link href="https://lab.example/posts/7"/>
    <published>2026-11-19T23:30:00-05:00</published>
    <author><name>Ada Lovelace</name></author>
    <author><name>Doe, Jane</name></author>
    <summary type="html">&lt;p&gt;We study x &amp;lt; y.&lt;/p&gt;</summary>
  </entry>
  <entry><title></title><id>urn:lab:untitled</id></entry>
</feed>"""


def test_generic_atom_entry_fields_and_an_untitled_entry_is_skipped_with_a_warning() -> None:
    parsed = parse_feed(GENERIC_ATOM, name="lab")
    assert parsed.entries == 2 and len(parsed.items) == 1
    paper = parsed.items[0].paper
    assert paper.title == "Sparse attention & you"
    assert paper.abstract == "We study x < y."
    assert paper.authors == ("Ada Lovelace", "Doe, Jane")  # no comma split outside arXiv
    assert paper.arxiv_id is None and paper.id.startswith("t-")
    assert paper.published == date(2026, 11, 20)
    assert paper.urls == ("https://lab.example/posts/7",)
    assert parsed.items[0].guid == "urn:lab:post-7"
    assert parsed.warnings == ["lab: item 2: no title, skipped"]


def test_a_truncated_feed_warns_and_keeps_only_the_whole_items() -> None:
    data = (FEEDS / RSS_FIRST50).read_bytes()
    start = 0
    for _ in range(10):
        start = data.index(b"<item>", start) + 1
    cut = data.index(b"Abstract:", start) + 200  # inside item 10's abstract
    parsed = parse_feed(data[:cut], name="cut")
    assert [i.paper.id for i in parsed.items] == [f"2411.{17700 + n}" for n in range(9)]
    assert "malformed feed (SAXParseException" in parsed.warnings[0]
    assert any("last item is dropped" in w for w in parsed.warnings)


def test_an_unescaped_ampersand_warns_but_keeps_every_item() -> None:
    data = (FEEDS / RSS_FIRST50).read_bytes().replace(b"Sector</title>", b"Sector & Co</title>", 1)
    parsed = parse_feed(data, name="amp")
    assert len(parsed.items) == 50
    assert parsed.items[0].paper.title.endswith("Sector & Co")
    assert "not well-formed" in parsed.warnings[0]


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Service unavailable</body></html>",
        b"",
        b'{"items": 1}',
        # a text page (a README, a plain-text error): feedparser guesses "atom10" for it,
        # and it was an "ok" feed with nothing new, every day, instead of a failure
        b"# Captured feeds\n\nEach file is one answer of a server & its date.\n",
        b"Service Unavailable <br> try again later\n",
    ],
)
def test_a_document_that_is_no_feed_is_an_error(body: bytes) -> None:
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        parse_feed(body, name="x")


def test_bytes_that_look_like_a_path_are_parsed_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.xml"
    secret.write_bytes((FEEDS / RSS_FIRST50).read_bytes())
    with pytest.raises(SourceError, match="not an RSS or Atom feed"):
        parse_feed(str(secret).encode(), name="x")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: f"<rss>{t}".encode()))
def test_any_bytes_give_papers_or_a_clear_error(body: bytes) -> None:
    try:
        parsed = parse_feed(body, name="fuzz")
    except SourceError as exc:
        assert exc.message.startswith("fuzz: ")
    else:
        assert all(item.paper.title for item in parsed.items)


def test_a_stray_latin1_byte_is_replaced_without_garbling_the_rest() -> None:
    data = (FEEDS / "arxiv_api_2026-04-12_search-testing_10-entries.xml").read_bytes()
    bad = data.replace(b"Multiple Testing Techniques", b"Multiple Testing caf\xe9", 1)
    parsed = parse_feed(bad, name="enc")
    assert len(parsed.items) == 10
    assert parsed.items[0].paper.title.endswith("Multiple Testing caf\ufffd")
    assert any("Aurora Ramírez" in i.paper.authors for i in parsed.items)  # not "RamÃ­rez"
    assert parsed.warnings == [
        f"enc: invalid UTF-8 from byte {bad.index(b'caf') + 3}: bad bytes replaced with U+FFFD"
    ]


def test_a_wrong_content_type_is_a_warning_and_every_item_is_kept() -> None:
    data = (FEEDS / RSS_FIRST50).read_bytes()
    parsed = parse_feed(data, name="ct", content_type="text/html; charset=utf-8")
    assert len(parsed.items) == 50
    assert parsed.warnings == [
        "ct: malformed feed (NonXMLContentType: text/html; charset=utf-8 is not an XML media type)"
    ]


def test_maths_in_a_plain_text_abstract_is_not_taken_for_html() -> None:
    data = arxiv_rss(
        [RssItem("2411.00001", 1, "Bounds when p<q", abstract="For p<q and q>1, <i>n</i> & m.")]
    )
    paper = parse_feed(data, name="m").items[0].paper
    assert paper.title == "Bounds when p<q"
    assert paper.abstract == "For p<q and q>1, n & m."


BLOG_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel><title>Lab blog</title><link>https://lab.example.org/</link>
<item><title>Only content</title><link>https://lab.example.org/p/1</link>
<content:encoded><![CDATA[<p>We study <b>sparse</b> models.</p><p>Second part.</p>]]></content:encoded>
</item>
<item><title>Embedded script</title><link>https://lab.example.org/p/2</link>
<description><![CDATA[<script type="text/javascript">var x = "<p>no</p>";</script>
<style>p { color: red }</style><p>The real abstract.</p>]]></description>
</item>
</channel></rss>
"""
BLOG_ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Lab</title><id>urn:lab</id>
<updated>2026-11-20T00:00:00Z</updated>
<entry><title>Atom content only</title><id>urn:lab:1</id>
<link href="https://lab.example.org/a/1"/><updated>2026-11-20T00:00:00Z</updated>
<content type="html">&lt;p&gt;Dense &lt;i&gt;retrieval&lt;/i&gt; at scale.&lt;/p&gt;</content>
</entry></feed>
"""


def test_an_item_with_only_html_content_gets_its_text_not_its_tags() -> None:
    rss = parse_feed(BLOG_RSS.encode(), name="blog")
    assert rss.items[0].paper.abstract == "We study sparse models. Second part."
    atom = parse_feed(BLOG_ATOM.encode(), name="blog")
    assert atom.items[0].paper.abstract == "Dense retrieval at scale."


def test_scripts_and_style_sheets_in_a_description_are_dropped_with_their_content() -> None:
    parsed = parse_feed(BLOG_RSS.encode(), name="blog")
    assert parsed.items[1].paper.abstract == "The real abstract."


def test_an_item_linking_arxivs_doi_is_that_arxiv_paper() -> None:
    body = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Journal club</title>"
        "<item><title>Exploring the Impact of Generative AI</title>"
        "<link>https://doi.org/10.48550/arXiv.2411.17700</link>"
        "<description>A paper we read.</description></item></channel></rss>"
    )
    (item,) = parse_feed(body.encode(), name="club").items
    assert item.paper.arxiv_id == "2411.17700" and item.paper.id == "2411.17700"
