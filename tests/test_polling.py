"""Polling feeds end to end: a real HTTP server, a real SQLite store, the sample drops."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from digestbot.config import Settings, parse_settings
from digestbot.errors import ConfigError
from digestbot.ingest import ingest_paths
from digestbot.models import Paper
from digestbot.polling import FetchReport, poll_feeds
from digestbot.sources.fetch import HostRateLimiter
from digestbot.store import SqlStore
from digestbot.store.feeds import load_feed_states
from tests.conftest import NOW, POSTGRES_URL, open_postgres_store
from tests.feed_server import (
    FEEDS,
    RSS_FIRST50,
    Answer,
    FeedServer,
    Route,
    RssItem,
    arxiv_rss,
    hf_api,
)

MIXED = FEEDS / "arxiv_rss_2024-11-28_all-archives_items911-960.xml"
TAROT = "TAROT: Targeted Data Selection via Optimal Transport"
TAROT_AUTHORS = "Lan Feng, Fan Nie, Yuejiang Liu, Alexandre Alahi"


@pytest.fixture
def store(any_store: SqlStore) -> SqlStore:
    """Every test here runs on SQLite, and on PostgreSQL where a server is given."""
    return any_store


def settings_for(*feeds: dict[str, Any]) -> Settings:
    return parse_settings({"feeds": list(feeds)}, env={})


def poll(
    settings: Settings, store: SqlStore, http: httpx.Client, *, now=NOW, **kwargs: Any
) -> FetchReport:
    return poll_feeds(
        settings,
        store,
        now=now,
        http=http,
        limiter=HostRateLimiter(hosts=()),
        sleep=lambda _s: None,
        **kwargs,
    )


def states(store: SqlStore) -> dict[str, Any]:
    return {s.name: s for s in load_feed_states(store)}


def test_a_poll_stores_papers_and_a_304_poll_writes_nothing_but_health(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/rss/cs"] = Route(body=RSS_FIRST50.read_bytes(), etag='"abc"')
    settings = settings_for({"name": "arxiv", "url": server.url("/rss/cs")})
    first = poll(settings, store, http).feeds[0]
    assert (first.status, first.items, first.new, first.merged, first.skipped) == (
        "ok",
        50,
        50,
        0,
        0,
    )
    later = NOW + timedelta(hours=1)
    second = poll(settings, store, http, now=later).feeds[0]
    assert second.status == "not-modified" and second.new == 0
    assert server.requests[1].headers["if-none-match"] == '"abc"'
    papers = store.load_papers(with_sources=True)
    assert len(papers) == 50
    assert {p.last_seen for p in papers} == {NOW}  # nothing was merged again
    paper = store.load_papers(ids=["2411.17700"], with_sources=True)[0]
    assert paper.arxiv_version == 1 and paper.authors == ("Jun Cui",)
    assert [(s.kind, s.name, s.entry) for s in paper.sources] == [
        ("feed", "arxiv", "oai:arXiv.org:2411.17700v1")
    ]
    state = states(store)["arxiv"]
    assert (state.last_status, state.last_success, state.items_seen) == ("not-modified", later, 50)
    assert state.etag == '"abc"' and state.consecutive_failures == 0


def test_the_same_body_without_validators_is_fetched_but_not_parsed_again(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/rss"] = Route(body=RSS_FIRST50.read_bytes())
    settings = settings_for({"name": "arxiv", "url": server.url("/rss")})
    assert poll(settings, store, http).feeds[0].new == 50
    again = poll(settings, store, http, now=NOW + timedelta(hours=1)).feeds[0]
    assert again.status == "not-modified" and server.hits("/rss") == 2
    assert {p.last_seen for p in store.load_papers()} == {NOW}


def test_replacements_are_off_by_default_and_only_update_known_papers(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    earlier = NOW - timedelta(days=300)
    with store.transaction() as conn:
        store.upsert_papers(
            conn,
            [
                Paper(
                    title="Existence of designs (draft)",
                    abstract="Old.",
                    arxiv_id="1401.3665",
                    arxiv_version=1,
                )
            ],
            now=earlier,
        )
    server.routes["/mixed"] = Route(body=MIXED.read_bytes())
    default = poll(settings_for({"name": "m", "url": server.url("/mixed")}), store, http)
    outcome = default.feeds[0]
    assert (outcome.new, outcome.updated, outcome.skipped) == (25, 0, 25)
    assert store.get_paper("1401.3665").arxiv_version == 1

    with_replace = settings_for(
        {"name": "m2", "url": server.url("/mixed"), "announce_types": ["new", "cross", "replace"]}
    )
    outcome = poll(with_replace, store, http, now=NOW + timedelta(days=1)).feeds[0]
    assert (outcome.new, outcome.merged, outcome.updated, outcome.skipped) == (0, 25, 1, 24)
    paper = store.get_paper("1401.3665")
    assert paper.title == "The existence of designs" and paper.arxiv_version == 4
    assert paper.abstract.startswith("We prove the existence conjecture")
    assert paper.first_seen == earlier  # a revision is not a new paper for digests
    assert store.count_papers() == 26


def test_drop_then_feed_then_api_make_one_paper_with_the_best_of_each(
    server: FeedServer, http: httpx.Client, store: SqlStore, seeds: Path
) -> None:
    ingest_paths(store, [seeds], now=NOW)
    count = store.count_papers()
    before = store.get_paper(TAROT)
    assert before.id.startswith("t-") and before.arxiv_id is None
    server.routes["/rss"] = Route(
        body=arxiv_rss([RssItem("2412.00420", 2, TAROT, authors=TAROT_AUTHORS)])
    )
    server.routes["/hf"] = Route(
        body=hf_api(
            arxiv_id="2412.00420",
            title=TAROT,
            upvotes=12,
            stars=40,
            authors=TAROT_AUTHORS.split(", "),
        ),
        content_type="application/json",
    )
    settings = settings_for(
        {"name": "arxiv", "url": server.url("/rss")},
        {"name": "hf", "url": server.url("/hf"), "kind": "hf-api"},
    )
    report = poll(settings, store, http, now=NOW + timedelta(hours=2))
    assert [(f.name, f.new, f.merged) for f in report.feeds] == [("arxiv", 0, 1), ("hf", 0, 1)]
    assert store.count_papers() == count
    paper = store.load_papers(ids=["2412.00420"], with_sources=True)[0]
    assert paper.title == TAROT and paper.arxiv_version == 2
    assert paper.authors == ("Lan Feng", "Fan Nie", "Yuejiang Liu", "Alexandre Alahi")
    assert paper.authors_count == before.authors_count == 4  # the drop's count stays
    assert paper.upvotes == 12 and paper.extra["github_stars"] == 40
    assert paper.first_seen == before.first_seen == NOW
    assert paper.abstract == before.abstract  # the drop's full abstract is the longer one
    assert sorted((s.kind, s.name) for s in paper.sources)[1:] == [
        ("feed", "arxiv"),
        ("feed", "hf"),
    ]
    assert paper.sources[0].kind == "drop"
    assert store.get_paper(TAROT).id == "2412.00420"


def test_feed_then_drop_make_one_paper_too(
    server: FeedServer, http: httpx.Client, store: SqlStore, seeds: Path
) -> None:
    server.routes["/rss"] = Route(
        body=arxiv_rss([RssItem("2412.00420", 1, TAROT, authors=TAROT_AUTHORS)])
    )
    poll(settings_for({"name": "arxiv", "url": server.url("/rss")}), store, http)
    report = ingest_paths(store, [seeds], now=NOW + timedelta(hours=1))
    assert store.count_papers() == report.papers_new + 1
    paper = store.load_papers(ids=["2412.00420"], with_sources=True)[0]
    assert {s.kind for s in paper.sources} == {"feed", "drop"}
    assert paper.authors_count == 4 and paper.abstract.startswith("We propose TAROT")
    assert paper.first_seen == NOW


def test_a_failing_feed_is_recorded_and_the_others_still_go_in(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/bad"] = Route(
        body=(FEEDS / "arxiv_rss_2024-11-28_error_bad-archive-name.xml").read_bytes()
    )
    server.routes["/down"] = Route(script=[Answer(500)] * 3)
    server.routes["/good"] = Route(body=RSS_FIRST50.read_bytes())
    server.routes["/weekend"] = Route(
        body=(FEEDS / "arxiv_rss_2026-08-01_cs.CL_weekend-empty.xml").read_bytes()
    )
    settings = settings_for(
        {"name": "bad", "url": server.url("/bad")},
        {"name": "down", "url": server.url("/down")},
        {"name": "good", "url": server.url("/good")},
        {"name": "weekend", "url": server.url("/weekend")},
    )
    report = poll(settings, store, http)
    assert not report.ok
    by_name = {f.name: f for f in report.feeds}
    assert by_name["bad"].status == "failed"
    assert "arXiv: Feed error for query" in (by_name["bad"].error or "")
    assert "Bad archive 'astroph'" in (by_name["bad"].error or "")
    assert by_name["down"].error == "down: HTTP 500 Internal Server Error (after 3 attempts)"
    assert (by_name["good"].status, by_name["good"].new) == ("ok", 50)
    assert (by_name["weekend"].status, by_name["weekend"].items, by_name["weekend"].error) == (
        "ok",
        0,
        None,
    )
    assert store.count_papers() == 50
    health = states(store)
    assert health["bad"].consecutive_failures == 1 and health["bad"].last_success is None
    assert health["weekend"].last_status == "ok" and health["weekend"].last_error is None
    poll(settings, store, http, only="bad", now=NOW + timedelta(hours=1))
    assert states(store)["bad"].consecutive_failures == 2


def test_the_arxiv_api_400_reports_arxivs_message(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    body = (FEEDS / "arxiv_api_2026-04-12_http400_incorrect-id-format.xml").read_bytes()
    server.routes["/api"] = Route(
        script=[Answer(400, body, {"Content-Type": "application/atom+xml"})]
    )
    report = poll(settings_for({"name": "api", "url": server.url("/api")}), store, http)
    assert report.feeds[0].error == (
        "api: HTTP 400 Bad Request (arXiv API error: incorrect id format for abc)"
    )


def test_validators_of_an_old_url_are_not_sent_to_a_new_one(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/a"] = Route(body=RSS_FIRST50.read_bytes(), etag='"a"')
    server.routes["/b"] = Route(body=RSS_FIRST50.read_bytes(), etag='"a"')
    poll(settings_for({"name": "f", "url": server.url("/a")}), store, http)
    moved = poll(settings_for({"name": "f", "url": server.url("/b")}), store, http)
    assert "if-none-match" not in server.requests[1].headers
    assert moved.feeds[0].status == "ok" and moved.feeds[0].merged == 50


def test_a_url_with_credentials_is_stored_without_them_and_its_validators_still_apply(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    server.routes["/rss?token=TOK1"] = Route(body=RSS_FIRST50.read_bytes(), etag='"t"')
    server.routes["/rss?token=TOK2"] = Route(body=RSS_FIRST50.read_bytes(), etag='"t"')
    url = server.url("/rss?token=TOK1")
    poll(settings_for({"name": "f", "url": url}), store, http)
    again = poll(settings_for({"name": "f", "url": url}), store, http)
    assert again.feeds[0].status == "not-modified"
    assert server.requests[1].headers["if-none-match"] == '"t"'
    digest = hashlib.sha256(url.encode()).hexdigest()
    assert states(store)["f"].url == f"{server.url('/rss?token=***')} sha256:{digest}"
    # a new token is a new URL: its validators are not sent
    poll(settings_for({"name": "f", "url": server.url("/rss?token=TOK2")}), store, http)
    assert "if-none-match" not in server.requests[2].headers


def test_a_misspelt_announce_type_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for({"name": "a", "url": "http://127.0.0.1/", "announce_types": ["replaced"]})
    assert caught.value.key == "feeds.0.announce_types"
    assert "unknown announce type 'replaced'" in caught.value.message


def test_a_feed_url_must_be_http() -> None:
    with pytest.raises(ConfigError) as caught:
        settings_for({"name": "a", "url": "file:///etc/passwd"})
    assert caught.value.key == "feeds.0.url"


def test_the_hf_api_configured_without_its_kind_is_still_read(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    """``url: …/api/daily_papers`` left at the default kind: a JSON list, no RSS or Atom,
    which failed as "not an RSS or Atom feed (SAXParseException…)"."""
    body = (FEEDS / "hf_daily_papers_api_2024-03-21.json").read_bytes()
    server.routes["/api/daily_papers"] = Route(body=body, content_type="application/json")
    settings = settings_for({"name": "hf", "url": server.url("/api/daily_papers")})
    outcome = poll(settings, store, http).feeds[0]
    assert (outcome.status, outcome.items, outcome.new, outcome.error) == ("ok", 18, 18, None)
    assert store.get_paper("2401.13923").arxiv_id == "2401.13923"


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_paper_another_process_stores_meanwhile_is_merged_not_an_error(
    tmp_path: Path, server: FeedServer, http: httpx.Client, backend: str
) -> None:
    """Two polls at once (the daemon and a ``fetch``): the one that writes second used to
    look its papers up before the other's commit, then fail the whole command with
    "UNIQUE constraint failed: papers.arxiv_id". It now looks up holding the write lock."""
    import threading
    import time

    if backend == "postgres":
        assert POSTGRES_URL
        open_postgres_store().close()  # a fresh schema
        db = POSTGRES_URL
    else:
        db = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    polling, other = SqlStore.open(db), SqlStore.open(db)
    server.routes["/rss"] = Route(body=RSS_FIRST50.read_bytes())
    settings = settings_for({"name": "arxiv", "url": server.url("/rss")})
    done: dict[str, Any] = {}
    with other.transaction() as conn:  # the other process's write, not committed yet
        other.upsert_papers(
            conn, [Paper(title="Stored first", abstract="A.", arxiv_id="2411.17700")], now=NOW
        )
        thread = threading.Thread(target=lambda: done.update(report=poll(settings, polling, http)))
        thread.start()
        time.sleep(1.0)  # the poll has fetched and parsed, and waits for the lock
    thread.join(30)
    outcome = done["report"].feeds[0]
    assert (outcome.status, outcome.new, outcome.merged, outcome.error) == ("ok", 49, 1, None)
    assert polling.count_papers() == 50
    polling.close()
    other.close()


def test_a_feed_moved_permanently_is_read_and_the_admin_told_its_new_url(
    store: SqlStore, server: FeedServer, http: httpx.Client
) -> None:
    # the old URL redirects for now; one day it will not, and the feed breaks: say so early
    body = RSS_FIRST50.read_bytes()
    server.routes["/new"] = Route(body=body, etag='"v1"')
    server.routes["/old"] = Route(script=[Answer(301, headers={"Location": "/new"})] * 2)
    server.routes["/tmp"] = Route(script=[Answer(302, headers={"Location": "/new"})] * 2)
    settings = settings_for(
        {"name": "moved", "url": server.url("/old")}, {"name": "hop", "url": server.url("/tmp")}
    )
    first = {f.name: f for f in poll(settings, store, http).feeds}
    assert first["moved"].status == "ok" and first["moved"].new == 50
    assert any(
        "moved permanently to " + server.url("/new") in w and "update its url" in w
        for w in first["moved"].warnings
    )
    assert not any("moved" in w for w in first["hop"].warnings)  # a temporary redirect
    again = {f.name: f for f in poll(settings, store, http).feeds}
    assert again["moved"].status == "not-modified"
    assert any("moved permanently" in w for w in again["moved"].warnings)


def _blog_rss(items: list[tuple[str, str, str]]) -> bytes:
    """A plain RSS 2.0 feed (no arXiv ids) of (title, link, description)."""
    body = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<description>{d}</description></item>"
        for t, link, d in items
    )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Blog</title>"
        f"<link>https://blog.example.org/</link>{body}</channel></rss>"
    ).encode()


def test_feed_items_titled_with_symbols_only_are_kept_apart_by_their_links(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    items = [
        ("∇ ⊗ ∇", "https://blog.example.org/p/1", "Gradients."),
        ("???", "https://blog.example.org/p/2", "Questions."),
        ("🎉", "https://blog.example.org/p/3", "Parties."),
    ]
    server.routes["/blog"] = Route(body=_blog_rss(items))
    settings = settings_for({"name": "blog", "url": server.url("/blog")})
    report = poll(settings, store, http)
    assert [(f.name, f.new, f.merged) for f in report.feeds] == [("blog", 3, 0)]
    # the next poll: a description edited, an item added
    items[1] = ("???", "https://blog.example.org/p/2", "Questions, edited.")
    items.append(("!!!", "https://blog.example.org/p/4", "Exclamations."))
    server.routes["/blog"] = Route(body=_blog_rss(items))
    report = poll(settings, store, http, now=NOW + timedelta(hours=2))
    assert [(f.name, f.new, f.merged) for f in report.feeds] == [("blog", 1, 3)]
    assert store.count_papers() == 4


def test_a_feed_giving_items_one_guid_is_stored_not_failed_at_every_poll(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    item = "<item><title>{0}</title><link>{1}</link><guid>https://blog.example.org/</guid>"
    item += "<description>{2}</description></item>"
    items = [
        ("Sparse Mixtures Revisited", "https://blog.example.org/p/1", "One."),
        ("Dense Retrieval at Scale", "https://blog.example.org/p/2", "Two."),
        ("Dense Retrieval at Scale", "https://blog.example.org/p/2", "Two."),  # listed twice
    ]
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Blog</title>"
        + "".join(item.format(*i) for i in items)
        + "</channel></rss>"
    )
    server.routes["/blog"] = Route(body=body.encode())
    report = poll(settings_for({"name": "blog", "url": server.url("/blog")}), store, http)
    (outcome,) = report.feeds
    assert (outcome.status, outcome.new, outcome.error) == ("ok", 2, None)
    assert any("repeat an earlier item" in w for w in outcome.warnings)
    entries = sorted(s.entry for p in store.load_papers(with_sources=True) for s in p.sources)
    assert entries == ["https://blog.example.org/", "https://blog.example.org/p/2"]


def _rss(*items: str) -> bytes:
    body = "".join(f"<item>{item}</item>" for item in items)
    return f"<rss version='2.0'><channel><title>t</title>{body}</channel></rss>".encode()


def test_a_feed_none_of_whose_items_can_be_read_fails_instead_of_looking_empty(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    # a feed that changed its format (no links nor ids any more) must not look like a quiet
    # weekend for weeks: "ok, 0 new" raised no alert; a failure does (and status shows it)
    server.routes["/broken"] = Route(
        body=_rss("<title>A</title>", "<title>B</title><description>x</description>")
    )
    server.routes["/partly"] = Route(
        body=_rss("<title>A</title>", "<title>C</title><link>https://example.org/c</link>")
    )
    server.routes["/empty"] = Route(body=_rss())
    settings = settings_for(
        {"name": "broken", "url": server.url("/broken")},
        {"name": "partly", "url": server.url("/partly")},
        {"name": "empty", "url": server.url("/empty")},
    )
    report = poll(settings, store, http)
    outcomes = {f.name: f for f in report.feeds}
    assert outcomes["broken"].status == "failed"
    assert outcomes["broken"].error is not None
    assert "none of its 2 items could be read" in outcomes["broken"].error
    assert "no id or link" in outcomes["broken"].error  # the parser's first reason
    assert (outcomes["partly"].status, outcomes["partly"].new) == ("ok", 1)
    assert (outcomes["empty"].status, outcomes["empty"].items) == ("ok", 0)  # a quiet day
    assert states(store)["broken"].consecutive_failures == 1


def test_a_feed_cut_short_is_fetched_in_full_at_the_next_poll_not_answered_304(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    # a body cut off mid-item (a server or proxy that closed the document early): the whole
    # items go in, and its validators must not be kept, or the next poll is answered 304 and
    # the items after the cut are never read (arXiv's daily feed moves on the next day)
    full = RSS_FIRST50.read_bytes()
    start = 0
    for _ in range(10):
        start = full.index(b"<item>", start) + 1
    cut = full[: full.index(b"Abstract:", start) + 200]  # inside item 10's abstract
    route = Route(body=cut, etag='"v1"', last_modified="Thu, 28 Nov 2024 05:00:00 GMT")
    server.routes["/rss/cs"] = route
    settings = settings_for({"name": "arxiv", "url": server.url("/rss/cs")})
    first = poll(settings, store, http).feeds[0]
    assert (first.status, first.new) == ("ok", 9)
    route.body = full  # the same document, whole this time (same ETag: the server's own)
    second = poll(settings, store, http, now=NOW + timedelta(hours=1)).feeds[0]
    assert (second.status, second.new) == ("ok", 41)
    assert len(store.load_papers()) == 50
    third = poll(settings, store, http, now=NOW + timedelta(hours=2)).feeds[0]
    assert third.status == "not-modified"  # whole: its validators are kept as usual


def test_a_json_feed_item_with_nul_characters_is_stored_without_them(
    server: FeedServer, http: httpx.Client, store: SqlStore
) -> None:
    # PostgreSQL's text holds no NUL: one "\u0000" in an item failed every poll of the feed
    # (all its papers lost there); SQLite stored it, to be shown in every digest
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Lab",
        "items": [
            {"id": "1", "url": "https://example.org/a", "title": "Good paper one"},
            {
                "id": "2\u0000",
                "url": "https://example.org/b",
                "title": "Nul\u0000 paper two",
                "content_text": "An abstract\u0000 with a NUL.",
                "authors": [{"name": "Ada\u0000 Lovelace"}],
            },
        ],
    }
    body = json.dumps(feed).encode()
    assert b"\\u0000" in body
    server.routes["/feed.json"] = Route(body=body, content_type="application/feed+json")
    settings = settings_for({"name": "lab", "url": server.url("/feed.json")})
    result = poll(settings, store, http).feeds[0]
    assert (result.status, result.new) == ("ok", 2)
    stored = {p.title: p for p in store.load_papers(with_sources=True)}
    assert sorted(stored) == ["Good paper one", "Nul paper two"]
    assert stored["Nul paper two"].abstract == "An abstract with a NUL."
    assert [s.entry for s in stored["Nul paper two"].sources] == ["2"]
    # seen again: the same papers, nothing new, nothing failed
    server.routes["/feed.json"] = Route(body=body.replace(b"Lab", b"Lab2"))
    again = poll(settings, store, http, now=NOW + timedelta(hours=1)).feeds[0]
    assert (again.status, again.new) == ("ok", 0)
    assert store.count_papers() == 2
