"""Generic repeated titles ("Editorial", "Correction"…) in journal and blog feeds: each item
is its own paper; ordinary titles keep their ids and still merge across sources.

A real HTTP server on 127.0.0.1 serves the feeds; the store is a real SQLite file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import httpx

from digestbot.config import Settings, parse_settings
from digestbot.ids import canonical_id
from digestbot.ingest import ingest_paths
from digestbot.polling import FetchReport, poll_feeds
from digestbot.sources.fetch import HostRateLimiter
from digestbot.store import SqlStore
from tests.conftest import NOW
from tests.feed_server import FeedServer, Route


def blog_rss(items: list[tuple[str, str, str, str]]) -> bytes:
    """An RSS 2.0 document with (guid, link, title, description) items."""
    body = "".join(
        f"""<item><title>{escape(title)}</title><link>{escape(link)}</link>
        <guid isPermaLink="false">{escape(guid)}</guid>
        <description>{escape(text)}</description>
        <pubDate>Mon, 02 Nov 2026 08:00:00 GMT</pubDate></item>
        """
        for guid, link, title, text in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        "<title>Journal</title><link>https://journal.example/</link>"
        f"<description>A journal</description>{body}</channel></rss>\n"
    ).encode()


def settings_for(*feeds: dict[str, Any]) -> Settings:
    return parse_settings({"feeds": list(feeds)}, env={})


def poll(settings: Settings, store: SqlStore, http: httpx.Client, *, now=NOW) -> FetchReport:
    return poll_feeds(
        settings,
        store,
        now=now,
        http=http,
        limiter=HostRateLimiter(hosts=()),
        sleep=lambda _s: None,
    )


def by_title(store: SqlStore, title: str) -> list[Any]:
    return [p for p in store.load_papers(with_sources=True) if p.title == title]


ED1 = ("j-1", "https://journal.example/ed/1", "Editorial", "On reproducibility in our field.")
ED2 = ("j-2", "https://journal.example/ed/2", "Editorial", "Welcome to our new editors.")
ED3 = ("j-3", "https://journal.example/ed/3", "Editorial", "A year of open reviews.")


def test_two_editorials_in_one_feed_stay_two_papers(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/j"] = Route(body=blog_rss([ED1, ED2]))
    report = poll(settings_for({"name": "journal", "url": server.url("/j")}), store, http)
    assert report.feeds[0].new == 2
    found = by_title(store, "Editorial")
    assert sorted(p.abstract for p in found) == sorted([ED1[3], ED2[3]])
    assert len({p.id for p in found}) == 2


def test_editorials_of_later_polls_are_new_papers_and_each_merges_with_itself(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=blog_rss([ED1]))
    poll(settings, store, http)
    first_id = by_title(store, "Editorial")[0].id
    server.routes["/j"] = Route(body=blog_rss([ED2, ED1]))
    second = poll(settings, store, http, now=NOW + timedelta(days=7)).feeds[0]
    assert (second.new, second.merged) == (1, 1)
    server.routes["/j"] = Route(body=blog_rss([ED3, ED2]))
    third = poll(settings, store, http, now=NOW + timedelta(days=14)).feeds[0]
    assert (third.new, third.merged) == (1, 1)
    found = {p.abstract: p for p in by_title(store, "Editorial")}
    assert set(found) == {ED1[3], ED2[3], ED3[3]}
    assert found[ED1[3]].id == first_id  # the same item keeps its id
    # each paper keeps its own link and first-seen time
    assert found[ED2[3]].urls == (ED2[1],)
    assert found[ED2[3]].first_seen == NOW + timedelta(days=7)
    assert found[ED3[3]].first_seen == NOW + timedelta(days=14)


def test_the_same_generic_title_in_two_journals_is_two_papers(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    other = ("o-1", "https://other.example/issue-information", "Issue Information", "Masthead.")
    mine = ("j-9", "https://journal.example/issue-information", "Issue information", "Board.")
    server.routes["/j"] = Route(body=blog_rss([mine]))
    server.routes["/o"] = Route(body=blog_rss([other]))
    settings = settings_for(
        {"name": "journal", "url": server.url("/j")}, {"name": "other", "url": server.url("/o")}
    )
    report = poll(settings, store, http)
    assert sum(f.new for f in report.feeds) == 2
    assert store.count_papers() == 2


def test_a_recurring_blog_title_in_one_feed_is_one_paper_per_link(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    """Not in the list of generic titles: one feed does not list one paper under two links."""
    week1 = ("b-1", "https://blog.example/2026/11/02/links", "Links of the week", "Diffusion.")
    week2 = ("b-2", "https://blog.example/2026/11/09/links", "Links of the week", "Agents.")
    settings = settings_for({"name": "blog", "url": server.url("/b")})
    server.routes["/b"] = Route(body=blog_rss([week1]))
    poll(settings, store, http)
    server.routes["/b"] = Route(body=blog_rss([week2, week1]))
    poll(settings, store, http, now=NOW + timedelta(days=7))
    server.routes["/b"] = Route(body=blog_rss([week2]))  # week 1 left the feed
    third = poll(settings, store, http, now=NOW + timedelta(days=8)).feeds[0]
    assert (third.new, third.merged) == (0, 1)
    found = {p.abstract: p for p in by_title(store, "Links of the week")}
    assert set(found) == {"Diffusion.", "Agents."}
    assert found["Agents."].first_seen == NOW + timedelta(days=7)


def test_a_post_seen_again_under_the_same_guid_merges_whatever_its_link(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    """A link gaining a tracking parameter is still the same item (same guid)."""
    post = ("b-1", "https://blog.example/p/1", "Links of the week", "Diffusion.")
    tracked = ("b-1", "https://blog.example/p/1?utm_source=rss", "Links of the week", "Diffusion.")
    settings = settings_for({"name": "blog", "url": server.url("/b")})
    server.routes["/b"] = Route(body=blog_rss([post]))
    poll(settings, store, http)
    server.routes["/b"] = Route(body=blog_rss([tracked]))
    poll(settings, store, http, now=NOW + timedelta(days=1))
    assert store.count_papers() == 1


def test_the_same_paper_in_a_drop_and_a_blog_feed_merges(
    server: FeedServer, http: httpx.Client, store: SqlStore, seeds: Path
) -> None:
    ingest_paths(store, [seeds], now=NOW)
    count = store.count_papers()
    title = "TAROT: Targeted Data Selection via Optimal Transport"
    before = store.get_paper(title)
    item = ("r-1", "https://reading.example/tarot", title, "A short note on it.")
    server.routes["/r"] = Route(body=blog_rss([item]))
    poll(settings_for({"name": "reading", "url": server.url("/r")}), store, http)
    assert store.count_papers() == count
    after = store.get_paper(title)
    assert after.id == before.id
    assert "https://reading.example/tarot" in after.urls


def test_ordinary_titles_keep_their_ids() -> None:
    """Ids computed before generic titles were keyed apart: they must not change."""
    pinned = {
        "Attention Is All You Need": "t-4a1c934d3d98",
        "Scaling Laws for Neural Language Models": "t-3ef1b1051e4d",
        "Ünïcode Tïtle: α-β Learning!": "t-0196747b44a7",
        "Editorial Board Policies for Reproducible ML": "t-d2728f1a684f",
    }
    for title, ident in pinned.items():
        assert canonical_id(title=title, arxiv_id=None, link="https://example.org/x") == ident
        assert canonical_id(title=title, arxiv_id=None, doi="10.1000/x.1") == ident
        assert canonical_id(title=title, arxiv_id=None) == ident


def test_an_editorial_seen_again_with_a_tracking_parameter_is_the_same_paper(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    tracked = (ED1[0], ED1[1] + "?utm_source=rss&utm_medium=feed", ED1[2], ED1[3])
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=blog_rss([ED1]))
    poll(settings, store, http)
    server.routes["/j"] = Route(body=blog_rss([tracked]))
    again = poll(settings, store, http, now=NOW + timedelta(days=1)).feeds[0]
    assert (again.new, again.merged) == (0, 1)
    assert store.count_papers() == 1


def test_an_editorial_stored_under_its_title_before_the_upgrade_keeps_its_record(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    """A store written by an older digestbot holds every Editorial as one paper keyed by
    its title (id t-405b1a1fadc2, computed then): its items seen again merge into it, a
    new one is a paper of its own."""
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=blog_rss([ED1]))
    poll(settings, store, http)
    with store.transaction() as conn:  # as an older version stored it
        conn.exec_driver_sql(
            "UPDATE papers SET id = 't-405b1a1fadc2', tid = 't-405b1a1fadc2',"
            " title_key = 'editorial'"
        )
    server.routes["/j"] = Route(body=blog_rss([ED2, ED1]))
    again = poll(settings, store, http, now=NOW + timedelta(days=7)).feeds[0]
    assert (again.new, again.merged) == (1, 1)
    found = {p.abstract: p.id for p in by_title(store, "Editorial")}
    assert found[ED1[3]] == "t-405b1a1fadc2"
    assert found[ED2[3]] != "t-405b1a1fadc2"


def test_a_title_with_tex_accents_merges_with_its_unicode_form(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    """arXiv's feeds keep TeX accents in titles (``Schr\\"odinger``); a drop, a journal or a
    blog prints the letter (``Schrödinger``): one paper."""
    from tests.feed_server import RssItem, arxiv_rss

    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "d.txt").write_text(
        "Daily Papers\n\nJan 8\n\nSchrödinger Bridges for Erdős–Rényi Graphs\n\n"
        "We study bridges.\n\n  • 2 authors\n·\nJan 7, 2026 3\n",
        encoding="utf-8",
    )
    ingest_paths(store, [drops], now=NOW)
    title = "Schr\\\"odinger Bridges for Erd\\H{o}s--R\\'{e}nyi Graphs"
    server.routes["/rss"] = Route(body=arxiv_rss([RssItem("2601.00042", 1, title)]))
    report = poll(settings_for({"name": "arxiv", "url": server.url("/rss")}), store, http)
    assert (report.feeds[0].new, report.feeds[0].merged) == (0, 1)
    assert store.count_papers() == 1
    assert store.get_paper("2601.00042").upvotes == 3


def test_a_like_by_the_title_id_still_finds_the_paper_after_it_gains_an_arxiv_id(
    server: FeedServer, http: httpx.Client, store: SqlStore, seeds: Path
) -> None:
    """A `like:` entry copied from a digest while the paper had no arXiv id (``t-…``) kept
    working for `show` but silently stopped counting in ranking once the paper merged
    with its arXiv record."""
    from digestbot.store.ranking import resolve_paper_pks
    from tests.feed_server import RssItem, arxiv_rss

    ingest_paths(store, [seeds], now=NOW)
    title = "TAROT: Targeted Data Selection via Optimal Transport"
    old_id = store.get_paper(title).id
    assert old_id.startswith("t-")
    pk = resolve_paper_pks(store, [old_id])[old_id]
    server.routes["/rss"] = Route(body=arxiv_rss([RssItem("2412.00420", 2, title)]))
    poll(settings_for({"name": "arxiv", "url": server.url("/rss")}), store, http)
    assert store.get_paper(old_id).id == "2412.00420"
    assert resolve_paper_pks(store, [old_id, "2412.00420", title]) == {
        old_id: pk,
        "2412.00420": pk,
        title: pk,
    }


def journal_rss(items: list[tuple[str, str, str, str, str]]) -> bytes:
    """An RSS 1.0-style journal feed in RSS 2.0 with PRISM DOIs: (guid, link, title, text, doi)."""
    body = "".join(
        f"""<item><title>{escape(title)}</title><link>{escape(link)}</link>
        <guid isPermaLink="false">{escape(guid)}</guid>
        <description>{escape(text)}</description><prism:doi>{escape(doi)}</prism:doi>
        <dc:identifier>doi:{escape(doi)}</dc:identifier></item>
        """
        for guid, link, title, text, doi in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"'
        ' xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Journal</title>'
        "<link>https://journal.example/</link><description>A journal</description>"
        f"{body}</channel></rss>\n"
    ).encode()


def test_an_early_view_item_listed_again_in_its_issue_is_one_paper(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    """A journal lists an article early under one guid and link, then in its issue under
    others: the DOI says it is one paper (with neither, the links would say two)."""
    early = ("ev-7", "https://journal.example/early/7", "Sparse Probes", "Early.", "10.1000/J.7")
    issue = ("is-7", "https://journal.example/v3/i2/7", "Sparse Probes", "Issue.", "10.1000/j.7")
    other = ("is-8", "https://journal.example/v3/i2/8", "Sparse Probes", "Reply.", "10.1000/j.8")
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=journal_rss([early]))
    poll(settings, store, http)
    server.routes["/j"] = Route(body=journal_rss([issue, other]))
    again = poll(settings, store, http, now=NOW + timedelta(days=30)).feeds[0]
    assert (again.new, again.merged) == (1, 1)
    found = {p.extra["doi"]: p for p in by_title(store, "Sparse Probes")}
    assert set(found) == {"10.1000/j.7", "10.1000/j.8"}
    assert found["10.1000/j.7"].first_seen == NOW


def test_the_same_correction_in_two_feeds_is_one_paper_by_its_doi(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    mine = ("j-1", "https://journal.example/c/1", "Correction", "To fig. 2.", "10.1000/c.1")
    theirs = ("a-1", "https://aggregator.example/1", "Correction", "To fig. 2.", "10.1000/c.1")
    other = ("j-2", "https://journal.example/c/2", "Correction", "To table 1.", "10.1000/c.2")
    server.routes["/j"] = Route(body=journal_rss([mine, other]))
    server.routes["/a"] = Route(body=journal_rss([theirs]))
    settings = settings_for(
        {"name": "journal", "url": server.url("/j")}, {"name": "agg", "url": server.url("/a")}
    )
    report = poll(settings, store, http)
    assert [(f.new, f.merged) for f in report.feeds] == [(2, 0), (0, 1)]
    assert store.count_papers() == 2


def test_a_correction_keyed_by_its_link_keeps_its_record_when_its_feed_adds_dois(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    plain = ("j-1", "https://journal.example/c/1", "Correction", "To fig. 2.")
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=blog_rss([plain]))
    poll(settings, store, http)
    first = by_title(store, "Correction")[0].id
    server.routes["/j"] = Route(body=journal_rss([(*plain, "10.1000/c.1")]))
    again = poll(settings, store, http, now=NOW + timedelta(days=1)).feeds[0]
    assert (again.new, again.merged) == (0, 1)
    [paper] = by_title(store, "Correction")
    assert paper.id == first and paper.extra["doi"] == "10.1000/c.1"


def test_a_journal_title_with_markup_inside_a_word_merges_with_its_plain_form(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    """Journals mark formulas up in titles (``CO<sub>2</sub>``): the tag was read as a
    space ("CO 2 Capture"), so the paper did not merge with its "CO2 Capture" elsewhere."""
    drops = tmp_path / "drops"
    drops.mkdir()
    (drops / "d.txt").write_text(
        "Daily Papers\n\nJan 8\n\nCO₂ Capture in Porous Frameworks at 10³ Pa\n\n"
        "We capture carbon.\n\n  • 2 authors\n·\nJan 7, 2026 3\n",
        encoding="utf-8",
    )
    ingest_paths(store, [drops], now=NOW)
    title = "<b>CO<sub>2</sub></b> Capture in <i>Porous</i> Frameworks at 10<sup>3</sup> Pa"
    item = ("j-5", "https://journal.example/a/5", title, "We capture carbon, in detail.")
    body = blog_rss([item]).replace(b"<title>&lt;b", b'<title type="html">&lt;b')
    server.routes["/j"] = Route(body=body)
    report = poll(settings_for({"name": "journal", "url": server.url("/j")}), store, http)
    assert (report.feeds[0].new, report.feeds[0].merged) == (0, 1)
    [paper] = store.load_papers()
    assert paper.title == "CO₂ Capture in Porous Frameworks at 10³ Pa"  # the first seen
