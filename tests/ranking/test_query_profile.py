"""A profile's keywords, excludes and likes that differ only in case or spacing count once."""

from __future__ import annotations

from digestbot.config import Profile
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking import rank
from digestbot.store import SqlStore
from tests.conftest import NOW

FILLER = "We report experiments on several benchmarks and discuss limitations."
PAPERS = [
    Paper(
        title="Protein folding at scale", abstract="Protein folding with transformers. " + FILLER
    ),
    Paper(title="Drug discovery agents", abstract="Agents for drug discovery. " + FILLER),
    Paper(
        title="Folding proteins and finding drugs",
        abstract="Protein folding meets drug discovery in one model. " + FILLER,
    ),
    Paper(title="Galaxy surveys", abstract="Counting galaxies. " + FILLER),
]
ONCE = Profile(name="p", keywords=["Protein Folding", "drug discovery"])
TWICE = Profile(
    name="p",
    keywords=["Protein Folding", "protein folding", " protein  FOLDING ", "drug discovery"],
)


def test_case_and_spacing_variants_of_a_keyword_count_once() -> None:
    once = rank(PAPERS, ONCE, now=NOW)
    twice = rank(PAPERS, TWICE, now=NOW)
    assert [(s.paper.title, s.score) for s in twice] == [(s.paper.title, s.score) for s in once]
    folding = next(s for s in twice if s.paper.title == "Protein folding at scale")
    assert folding.matched == ("Protein Folding",)  # the first spelling, once
    assert folding.why == "matches Protein Folding"


def test_the_store_ranking_counts_them_once_too(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    once = rank_profile(store, ONCE, now=NOW)
    twice = rank_profile(store, TWICE, now=NOW)
    assert [(s.paper.id, s.score) for s in twice] == [(s.paper.id, s.score) for s in once]
    assert all("protein folding" not in s.matched for s in twice)


def test_excludes_and_likes_are_deduplicated_keeping_the_first_spelling() -> None:
    profile = Profile(
        name="p",
        keywords={"Protein Folding": 2.0, "protein folding": 1.0, "drug discovery": 1.0},
        exclude=["Medical", "medical ", "galaxy"],
        like=["Drug Discovery Agents", "drug discovery  agents", "2401.00001"],
    )
    assert profile.keywords == {"Protein Folding": 2.0, "drug discovery": 1.0}
    assert profile.exclude == ["Medical", "galaxy"]
    assert profile.like == ["Drug Discovery Agents", "2401.00001"]
    assert ONCE.keywords == {"Protein Folding": 1.0, "drug discovery": 1.0}  # as written
