"""A light paper (past the detailed head of a ranking: no breakdown) carries whether it
matched the profile itself, so ``pick`` leaves out one reached only through query
expansion as it does a detailed one, with no second ranking to find out."""

from __future__ import annotations

from pathlib import Path

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper, ScoredPaper
from digestbot.ranking import pick
from digestbot.ranking.service import Ranking, rank_pool
from digestbot.store import SqlStore
from digestbot.store.ranking import pks_of_ids
from tests.conftest import NOW
from tests.delivery.helpers import OFF_TOPIC_SCAN as OFF_TOPIC
from tests.delivery.helpers import add_papers, make_paper, selective_scan_papers

PROFILE = Profile(name="attn", description="Efficient attention", keywords=["linear attention"])
TWO_TERMS = Profile(name="scan", keywords=["selective scan", "long context"])


def _papers() -> list[Paper]:
    return [*selective_scan_papers(60), OFF_TOPIC]


def _ranking(
    store: SqlStore, tmp_path: Path, *, ids: list[str], detailed: int, profile: Profile = PROFILE
) -> Ranking:
    only = set(pks_of_ids(store, ids).values())
    return rank_pool(
        store,
        profile,
        now=NOW,
        settings=RankingSettings(),
        index_dir=tmp_path / "index",
        only=only,
        detailed=detailed,
    )


def _ranked(
    store: SqlStore, tmp_path: Path, *, ids: list[str], detailed: int, profile: Profile = PROFILE
) -> list[ScoredPaper]:
    return _ranking(store, tmp_path, ids=ids, detailed=detailed, profile=profile).papers


def test_a_light_paper_reached_only_through_expansion_is_not_picked(
    store: SqlStore, tmp_path: Path
) -> None:
    add_papers(store, _papers(), now=NOW)
    pool = [OFF_TOPIC.id, make_paper(30).id, make_paper(31).id]  # two direct matches
    full = _ranked(store, tmp_path, ids=pool, detailed=1000)
    light = _ranked(store, tmp_path, ids=pool, detailed=0)
    [off_full] = [s for s in full if s.paper.id == OFF_TOPIC.id]
    [off_light] = [s for s in light if s.paper.id == OFF_TOPIC.id]
    assert off_full.score > 0 and off_full.breakdown["expansion"] > 0
    assert off_full.breakdown["profile"] == 0
    assert off_light.breakdown == {} and off_light.score == off_full.score
    assert [s.paper.id for s in pick(full, PROFILE)] == pool[1:]
    # was [OFF_TOPIC, 30, 31]: a light paper passed unchecked
    assert [s.paper.id for s in pick(light, PROFILE)] == pool[1:]
    assert off_light.direct is False and off_full.direct is False


def test_light_and_detailed_rankings_pick_the_same_papers(store: SqlStore, tmp_path: Path) -> None:
    add_papers(store, _papers(), now=NOW)
    pool = [p.id for p in _papers()]
    full = _ranked(store, tmp_path, ids=pool, detailed=1000)
    for detailed in (0, 5, 15):
        light = _ranked(store, tmp_path, ids=pool, detailed=detailed)
        assert [(s.paper.id, s.score, s.why) for s in light] == [
            (s.paper.id, s.score, s.why) for s in full
        ]
        assert [s.direct for s in light] == [s.direct for s in full]
        assert [s.paper.id for s in pick(light, PROFILE)] == [
            s.paper.id for s in pick(full, PROFILE)
        ]
    picked = [s.paper.id for s in pick(full, PROFILE)]
    assert len(picked) == PROFILE.top_k and OFF_TOPIC.id not in picked
    assert all(s.paper.title.startswith("Linear attention") for s in pick(full, PROFILE))


def test_papers_picked_from_deep_in_a_ranking_get_their_full_why(
    store: SqlStore, tmp_path: Path
) -> None:
    """A digest picks from a pool deep in its candidates' ranking: the picked light papers
    get the ``why`` (every matched term) and breakdown a detailed ranking gives them,
    from the scores already computed, not a second ranking."""
    both = [  # the best: both terms
        make_paper(i, title=f"Selective scan for long context {i}", upvotes=0)
        for i in range(61, 71)
    ]
    add_papers(store, [*_papers(), *both], now=NOW)
    pool = [p.id for p in [*_papers(), *both]]
    full = _ranked(store, tmp_path, ids=pool, detailed=1000, profile=TWO_TERMS)
    ranking = _ranking(store, tmp_path, ids=pool, detailed=0, profile=TWO_TERMS)
    light = pick(ranking.papers, TWO_TERMS)
    assert all(not s.breakdown for s in light)
    shown = [
        (s.paper.id, s.score, s.why, s.matched, dict(s.breakdown)) for s in pick(full, TWO_TERMS)
    ]
    assert [(s.paper.id, s.score, s.why) for s in light] != [row[:3] for row in shown]
    detailed = ranking.detail(light)
    assert [(s.paper.id, s.score, s.why, s.matched, dict(s.breakdown)) for s in detailed] == shown
    assert all(len(s.matched) > 1 for s in detailed)  # the light ones named one term
    assert {s.why for s in detailed} == {"matches selective scan, long context"}
    assert {s.paper.id for s in detailed} == {p.id for p in both}
