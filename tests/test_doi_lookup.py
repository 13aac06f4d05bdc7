"""A DOI typed where a paper is named (``feedback``, ``explain``, ``get_paper`` as Slack's
``/papers like`` uses it): bare, ``doi:``, a ``doi.org`` URL or a publisher's ``/doi/``
link, any case. The journal feed is served from 127.0.0.1; the store is a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestbot.errors import NotFoundError
from digestbot.store import SqlStore
from tests.conftest import as_json, write_config
from tests.feed_server import FeedServer, Route
from tests.test_dedup_generic import blog_rss

KDD = "10.1145/3580305.3599256"
ITEMS = [
    (
        "j-1",
        f"https://dl.acm.org/doi/abs/{KDD}",
        "Attention Graphs for Scalable Recommendation",
        "Linear attention over item graphs.",
    ),
    ("j-2", "https://doi.org/10.1016/J.CELL.2026.01.001", "Editorial", "Welcome, readers."),
    ("j-3", "https://journal.example/a/3", "Mamba Graphs", "State space models on graphs."),
]


def setup(tmp_path: Path, cli, server: FeedServer) -> str:
    server.routes["/j"] = Route(body=blog_rss(ITEMS))
    config = write_config(
        tmp_path,
        f"""
database_url: sqlite:///data/db.sqlite3
feeds:
  - {{name: journal, url: "{server.url("/j")}"}}
profiles:
  - name: graphs
    description: Attention and state space models on graphs.
""",
    )
    assert cli("--config", str(config), "fetch").exit_code == 0
    return str(config)


@pytest.mark.parametrize(
    "typed",
    [
        KDD,
        f"doi:{KDD}",
        f"DOI: {KDD.upper()}",
        f"https://doi.org/{KDD}",
        f"https://dx.doi.org/{KDD}",
        f"https://dl.acm.org/doi/{KDD}",
    ],
)
def test_feedback_and_explain_take_a_doi(
    tmp_path: Path, cli, server: FeedServer, typed: str
) -> None:
    config = setup(tmp_path, cli, server)
    voted = cli("--config", config, "feedback", "--profile", "graphs", typed, "down")
    assert voted.exit_code == 0, voted.output + voted.stderr
    explained = as_json(cli("--config", config, "explain", "--profile", "graphs", typed, "--json"))
    assert explained["disliked"] is True
    ranked = as_json(cli("--config", config, "rank", "--profile", "graphs", "--json"))
    down = next(item for item in ranked if item["title"].startswith("Attention Graphs"))
    assert down["why"] == "marked 👎"


def test_a_paper_keyed_by_its_doi_and_an_unknown_doi(
    tmp_path: Path, cli, server: FeedServer
) -> None:
    config = setup(tmp_path, cli, server)
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'db.sqlite3'}")
    try:
        assert store.get_paper("doi:10.1016/j.cell.2026.01.001").title == "Editorial"
        assert store.get_paper("https://doi.org/10.1016/J.Cell.2026.01.001").title == "Editorial"
        with pytest.raises(NotFoundError):
            store.get_paper("10.1145/0000000.0000000")
    finally:
        store.close()
    unknown = cli("--config", config, "feedback", "--profile", "graphs", "10.9999/nope", "up")
    assert unknown.exit_code != 0 and "unknown paper" in unknown.stderr
