"""A `like:` entry naming a paper whose title has no letter or digit (``∇ ⊗ ∇``, ``???``):
such papers are distinct papers (each keyed by its link or text), so the entry names the
one with that exact title, not whichever such paper comes first."""

from __future__ import annotations

from digestbot.models import Paper, SourceRef
from digestbot.ranking import resolve_likes
from digestbot.store import SqlStore
from digestbot.store.ranking import resolve_paper_pks
from tests.conftest import NOW


def item(title: str, n: int) -> Paper:
    return Paper(
        title=title,
        abstract=f"Post {n}.",
        urls=(f"https://blog.example/posts/{n}",),
        source=SourceRef(kind="feed", name="blog", entry=f"g{n}"),
    )


PAPERS = [item("∇ ⊗ ∇", 1), item("???", 2), item("Graph networks", 3)]


def test_in_memory_a_like_names_the_symbol_only_paper_of_that_title() -> None:
    ids = [p.id for p in PAPERS]
    assert len(set(ids)) == 3
    titles = [p.title for p in PAPERS]
    assert resolve_likes(["???"], ids=ids, titles=titles) == [1]
    assert resolve_likes(["∇ ⊗ ∇", " ??? "], ids=ids, titles=titles) == [0, 1]
    assert resolve_likes(["!!!"], ids=ids, titles=titles) == []


def test_in_the_store_a_like_names_the_symbol_only_paper_of_that_title(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    pks = {p.title: resolve_paper_pks(store, [p.id])[p.id] for p in PAPERS}
    assert resolve_paper_pks(store, ["???", "∇ ⊗ ∇", "!!!"]) == {
        "???": pks["???"],
        "∇ ⊗ ∇": pks["∇ ⊗ ∇"],
    }


def test_show_and_feedback_find_a_symbol_only_paper_by_its_exact_title(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    assert store.get_paper("???").title == "???"
    assert store.get_paper("∇ ⊗ ∇").title == "∇ ⊗ ∇"
