"""The fast full listing (``digestbot rank`` without --limit) equals the reference path."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from digestbot.cli import main
from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper, scored_as_dict
from digestbot.ranking.explain import Listing, order_best_first
from digestbot.ranking.persist import default_index_dir
from digestbot.ranking.service import rank_listing, rank_store
from digestbot.store import SqlStore
from digestbot.store.feedback import record_feedback
from tests.conftest import NOW, write_config

TOPICS = [
    ("Mamba: selective state space models", "Linear-time sequence modeling with SSMs."),
    ("Linear attention “revisited”", 'Kernel feature maps for "linear" attention.'),
    ("Sparse attention for long sequences", "Local windows and global tokens."),
    ("Graph networks for molecules", "Message passing on medical molecular graphs."),
    ("Diffusion for images", "Denoising score matching at scale."),
    ("A survey of efficient transformers", "Sub-quadratic attention and state space models."),
]


def corpus() -> list[Paper]:
    out = []
    for i in range(48):
        title, abstract = TOPICS[i % len(TOPICS)]
        out.append(
            Paper(
                title=f"{title} — part {i}",
                abstract=f"{abstract} Variant {i}." if i % 3 else "Nothing to see here.",
                upvotes=i % 4,  # many ties on score and upvotes: the id decides
            )
        )
    return out


@pytest.fixture
def filled(store: SqlStore) -> SqlStore:
    with store.transaction() as conn:
        store.upsert_papers(conn, corpus(), now=NOW)
    return store


def reference_json(store: SqlStore, profile: Profile, detailed: int) -> str:
    ranked = rank_store(
        store,
        profile,
        now=NOW,
        settings=RankingSettings(),
        index_dir=default_index_dir(store),
        detailed=detailed,
    )
    return json.dumps(
        [scored_as_dict(s) for s in ranked], ensure_ascii=False, separators=(",", ":")
    )


def fast_listing(store: SqlStore, profile: Profile, detailed: int) -> Listing:
    return rank_listing(
        store,
        profile,
        now=NOW,
        settings=RankingSettings(),
        index_dir=default_index_dir(store),
        detailed=detailed,
    )


PROFILES = [
    Profile(name="kw", keywords=["state space model", "linear attention", "sparse attention"]),
    Profile(
        name="full",
        description="Efficient sequence models: sub-quadratic attention and SSMs.",
        keywords={"mamba": 2.0, "efficient transformer": 1.0},
        exclude=["medical"],
    ),
    Profile(name="like", like=["Mamba: selective state space models — part 0"]),
    Profile(name="none", keywords=["quantum chromodynamics"]),
]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("detailed", [0, 7, 1000])
def test_the_fast_listing_equals_the_reference(
    filled: SqlStore, profile: Profile, detailed: int
) -> None:
    fast = fast_listing(filled, profile, detailed)
    assert len(fast) == 48
    assert fast.as_json() == reference_json(filled, profile, detailed)
    assert json.loads(fast.as_json()) == fast.as_dicts()


def test_votes_likes_and_excludes_list_the_same_both_ways(filled: SqlStore) -> None:
    papers = {p.title: p.id for p in filled.load_papers()}
    profile = Profile(
        name="votes",
        keywords=["attention"],
        like=["Sparse attention for long sequences — part 2"],
        exclude=["diffusion"],
    )
    for title, value in (
        ("Mamba: selective state space models — part 6", 1),
        ("Linear attention “revisited” — part 1", -1),
    ):
        record_feedback(
            filled,
            subject_kind="profile",
            subject="votes",
            paper_id=papers[title],
            value=value,
            source="cli",
            now=NOW,
        )
    for detailed in (0, 5, 1000):
        fast = fast_listing(filled, profile, detailed)
        assert fast.as_json() == reference_json(filled, profile, detailed)
    whys = set(fast.whys)
    assert "excluded by profile" in whys and "marked 👎" in whys
    assert any(w.startswith("like “") or "; like “" in w for w in whys)


def test_rank_json_prints_the_listing(filled: SqlStore, db_url: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"database_url: {db_url}\nprofiles:\n  - name: p\n    keywords: [mamba, sparse attention]\n",
    )
    args = ["--config", str(config), "--now", NOW.isoformat(), "rank", "--profile", "p", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    profile = Profile(name="p", keywords=["mamba", "sparse attention"])
    assert result.output == reference_json(filled, profile, 1000) + "\n"
    listed = json.loads(result.output)
    assert len(listed) == 48 and listed[0]["score"] > 0
    assert set(listed[0]) >= {"id", "title", "score", "why"}


@pytest.mark.parametrize("tie_share", [0.0, 0.05, 0.5, 1.0])
def test_best_first_breaks_ties_by_upvotes_then_id(tie_share: float) -> None:
    rng = random.Random(7)
    n = 400
    totals = [round(rng.random(), 6) for _ in range(n)]
    for i in range(int(n * tie_share)):
        totals[i] = 0.25 if i % 2 else 0.0
    upvotes = [rng.choice([0, 1]) if i % 3 else 5 for i in range(n)]
    ids = [f"p-{rng.getrandbits(32):08x}" for _ in range(n)]
    order = order_best_first(np.asarray(totals), upvotes=np.asarray(upvotes), ids=ids)
    expected = sorted(range(n), key=lambda i: (-totals[i], -upvotes[i], ids[i]))
    assert order.tolist() == expected


def test_without_an_index_folder_the_listing_still_equals_the_reference(filled: SqlStore) -> None:
    profile = PROFILES[1]
    fast = rank_listing(filled, profile, now=NOW, settings=RankingSettings(), index_dir=None)
    ranked = rank_store(filled, profile, now=NOW, settings=RankingSettings(), index_dir=None)
    assert fast.as_dicts() == [scored_as_dict(s) for s in ranked]
    assert fast.ids[0] == ranked[0].paper.id and fast.scores[0] > 0


def test_an_empty_store_lists_an_empty_json_array(store: SqlStore) -> None:
    fast = fast_listing(store, PROFILES[0], 10)
    assert len(fast) == 0
    assert fast.as_json() == "[]" == reference_json(store, PROFILES[0], 10)
