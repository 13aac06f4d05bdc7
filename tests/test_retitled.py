"""A paper retitled between arXiv versions stays one paper whichever way it arrives: the
titles it was known by stay aliases of it (``paper_titles``).

Drops are written as text and ingested; the arXiv feed is served from 127.0.0.1; the
store is a real SQLite file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from digestbot.config import parse_settings
from digestbot.ingest import ingest_paths
from digestbot.polling import poll_feeds
from digestbot.sources.fetch import HostRateLimiter
from digestbot.store import SqlStore
from tests.conftest import NOW
from tests.feed_server import FeedServer, Route, RssItem, arxiv_rss

OLD = "Sparse Walrus Attention for Long Documents"
NEW = "Walrus: Sparse Attention Is All Long Documents Need"
ARXIV = "2411.04242"


def poll(
    server: FeedServer, store: SqlStore, http: httpx.Client, *items: RssItem, days: int
) -> Any:
    server.routes["/rss"] = Route(body=arxiv_rss(list(items)))
    conf = parse_settings({"feeds": [{"name": "arxiv", "url": server.url("/rss")}]}, env={})
    report = poll_feeds(
        conf,
        store,
        now=NOW + timedelta(days=days),
        http=http,
        limiter=HostRateLimiter(hosts=()),
        sleep=lambda _s: None,
    )
    return report.feeds[0]


def drop(
    store: SqlStore, folder: Path, name: str, title: str, *, days: int, upvotes: int = 3
) -> Any:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(
        f"Daily Papers\n\nJan 8\n\n{title}\n\nWe study walruses ({name}).\n\n"
        f"  • 2 authors\n·\nJan 7, 2026 {upvotes}\n",
        encoding="utf-8",
    )
    report = ingest_paths(store, [path], now=NOW + timedelta(days=days))
    assert report.ok
    return report.files[0]


def test_drop_then_v1_then_retitled_v2_then_a_drop_under_the_old_title_is_one_paper(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    drops = tmp_path / "drops"
    first = drop(store, drops, "a.txt", OLD, days=0)
    assert first.papers_new == 1
    assert poll(server, store, http, RssItem(ARXIV, 1, OLD), days=1).merged == 1
    assert poll(server, store, http, RssItem(ARXIV, 2, NEW), days=2).merged == 1
    assert store.get_paper(ARXIV).title == NEW
    again = drop(store, drops, "b.txt", OLD, days=3, upvotes=9)
    assert (again.papers_new, again.papers_merged) == (0, 1)
    assert store.count_papers() == 1
    paper = store.get_paper(ARXIV)
    assert (paper.title, paper.upvotes) == (NEW, 9)
    # the old title, and the id the paper had under it, still find it
    assert store.get_paper(OLD).id == ARXIV
    assert store.get_paper(first_id(OLD)).id == ARXIV


def first_id(title: str) -> str:
    from digestbot.ids import title_id

    return title_id(title)


def test_retitled_v2_first_then_v1_then_a_drop_under_the_old_title_is_one_paper(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    assert poll(server, store, http, RssItem(ARXIV, 2, NEW), days=0).new == 1
    # an older listing (an HF page, a cross-list) gives the id with the first title
    assert poll(server, store, http, RssItem(ARXIV, 1, OLD), days=1).merged == 1
    assert store.get_paper(ARXIV).title == NEW
    later = drop(store, tmp_path / "drops", "a.txt", OLD, days=2)
    assert (later.papers_new, later.papers_merged) == (0, 1)
    assert store.count_papers() == 1


def test_a_drop_under_the_old_title_in_one_batch_with_the_retitled_version_is_one_paper(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    """Both titles in one poll (v1 and v2 listed together), then the old title in a drop."""
    report = poll(server, store, http, RssItem(ARXIV, 2, NEW), RssItem(ARXIV, 1, OLD), days=0)
    assert (report.new, report.merged) == (1, 1)
    later = drop(store, tmp_path / "drops", "a.txt", OLD, days=1)
    assert (later.papers_new, later.papers_merged) == (0, 1)
    assert store.count_papers() == 1


def test_a_database_made_before_aliases_gains_the_table_on_open(
    server: FeedServer, http: httpx.Client, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = SqlStore.open(url)
    assert poll(server, old, http, RssItem(ARXIV, 1, OLD), days=0).new == 1
    with old.transaction() as conn:  # as a digestbot without aliases left it
        conn.exec_driver_sql("DROP TABLE paper_aliases")
    old.close()
    store = SqlStore.open(url)
    try:
        assert "paper_aliases" in sa.inspect(store.engine).get_table_names()
        assert poll(server, store, http, RssItem(ARXIV, 2, NEW), days=1).merged == 1
        later = drop(store, tmp_path / "drops", "a.txt", OLD, days=2)
        assert (later.papers_new, later.papers_merged) == (0, 1)
        assert store.count_papers() == 1
    finally:
        store.close()


def test_a_generic_title_merged_by_arxiv_id_is_no_alias(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    """Only plain titles alias a paper: a later Editorial is never taken for it."""
    assert poll(server, store, http, RssItem(ARXIV, 1, NEW), days=0).new == 1
    assert poll(server, store, http, RssItem(ARXIV, 2, "Editorial"), days=1).merged == 1
    later = drop(store, tmp_path / "drops", "a.txt", "Editorial", days=2)
    assert later.papers_new == 1
    assert store.count_papers() == 2


def test_a_like_by_the_old_title_or_old_id_still_counts_after_the_retitle(
    server: FeedServer, http: httpx.Client, store: SqlStore, tmp_path: Path
) -> None:
    from digestbot.store.ranking import resolve_paper_pks

    drop(store, tmp_path / "drops", "a.txt", OLD, days=0)
    old_id = first_id(OLD)
    poll(server, store, http, RssItem(ARXIV, 1, OLD), days=1)
    poll(server, store, http, RssItem(ARXIV, 2, NEW), days=2)
    found = resolve_paper_pks(store, [OLD, old_id, NEW, ARXIV])
    assert len(set(found.values())) == 1 and set(found) == {OLD, old_id, NEW, ARXIV}
