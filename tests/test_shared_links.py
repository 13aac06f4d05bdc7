"""Feeds that give every item the same link (a journal's home page): that link is no
paper's identity, so generic titles and a recurring title stay one paper per item.

The feeds are served from 127.0.0.1; the store is a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from xml.sax.saxutils import escape

import httpx

from digestbot.sources.feeds import parse_feed
from digestbot.store import SqlStore
from tests.conftest import NOW
from tests.feed_server import FeedServer, Route
from tests.test_dedup_generic import by_title, poll, settings_for

HOME = "https://journal.example/"


def journal_rss(items: list[tuple[str, str, str]], *, channel_link: str = HOME) -> bytes:
    """(guid, title, description) items, every one linked to the journal's home page."""
    body = "".join(
        f"""<item><title>{escape(title)}</title><link>{HOME}</link>
        <guid isPermaLink="false">{escape(guid)}</guid>
        <description>{escape(text)}</description></item>"""
        for guid, title, text in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Journal</title><link>{channel_link}</link><description>J</description>"
        f"{body}</channel></rss>\n"
    ).encode()


ED1 = ("j-1", "Editorial", "On reproducibility in our field.")
ED2 = ("j-2", "Editorial", "Welcome to our new editors.")
ERR = ("j-3", "Erratum", "A figure was wrong in our last issue.")
WEEK1 = ("j-4", "Links of the week", "Walruses, narwhals and a paper on seals.")
WEEK2 = ("j-5", "Links of the week", "Penguins this time.")


def test_generic_titles_linked_to_the_home_page_stay_apart(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=journal_rss([ED1, ED2, ERR]))
    first = poll(settings, store, http).feeds[0]
    assert (first.new, first.merged) == (3, 0)
    editorials = by_title(store, "Editorial")
    assert sorted(p.abstract for p in editorials) == sorted([ED1[2], ED2[2]])
    assert all(p.urls == (HOME,) for p in editorials)  # the link is still shown
    # a later issue with one Editorial: its link is the channel's home page, so no identity
    server.routes["/j"] = Route(body=journal_rss([("j-9", "Editorial", "Our new policy.")]))
    later = poll(settings, store, http, now=NOW + timedelta(days=7)).feeds[0]
    assert (later.new, later.merged) == (1, 0)
    # each item seen again merges with itself
    server.routes["/j"] = Route(body=journal_rss([ED1, ED2]))
    again = poll(settings, store, http, now=NOW + timedelta(days=8)).feeds[0]
    assert (again.new, again.merged) == (0, 2)
    assert len(by_title(store, "Editorial")) == 3


def test_a_recurring_title_of_one_feed_with_one_link_for_all_is_one_paper_per_item(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    settings = settings_for({"name": "journal", "url": server.url("/j")})
    server.routes["/j"] = Route(body=journal_rss([WEEK1]))
    poll(settings, store, http)
    server.routes["/j"] = Route(body=journal_rss([WEEK2, WEEK1]))
    poll(settings, store, http, now=NOW + timedelta(days=7))
    server.routes["/j"] = Route(body=journal_rss([WEEK2]))  # week 1 left the feed
    third = poll(settings, store, http, now=NOW + timedelta(days=8)).feeds[0]
    assert (third.new, third.merged) == (0, 1)
    found = {p.abstract: p for p in by_title(store, "Links of the week")}
    assert set(found) == {WEEK1[2], WEEK2[2]}
    assert found[WEEK2[2]].first_seen == NOW + timedelta(days=7)


def test_only_shared_links_lose_their_identity() -> None:
    """Items with links of their own, and a home-page link given once by a feed whose
    channel links elsewhere, keep them as identity (their ids do not change)."""
    own = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>B</title>'
        b"<link>https://blog.example/</link><description>B</description>"
        b"<item><title>Editorial</title><link>https://blog.example/ed/1</link>"
        b"<guid>g1</guid><description>x</description></item>"
        b"<item><title>Editorial</title><link>https://blog.example/ed/2</link>"
        b"<guid>g2</guid><description>y</description></item></channel></rss>"
    )
    items = parse_feed(own, name="blog").items
    assert [i.paper.own_link for i in items] == [
        "https://blog.example/ed/1",
        "https://blog.example/ed/2",
    ]
    assert all("shared_link" not in i.paper.extra for i in items)
    once = journal_rss([ED1], channel_link="https://other.example/")
    (item,) = parse_feed(once, name="j").items
    assert item.paper.own_link == HOME
    shared = parse_feed(journal_rss([ED1, ED2]), name="j").items
    assert [i.paper.extra.get("shared_link") for i in shared] == [True, True]
    assert len({i.paper.id for i in shared}) == 2
