"""``row_vectors`` loads the vector kinds the settings keep (``vector_kinds``)."""

from __future__ import annotations

import numpy as np

from digestbot.config import RankingSettings
from digestbot.models import Paper
from digestbot.ranking.semantic import TITLE, Embedder, row_vectors
from digestbot.store import SqlStore
from digestbot.store.embeddings import missing_embeddings, record_embeddings
from tests.conftest import NOW


def test_title_vectors_are_loaded_when_the_settings_keep_them(store: SqlStore) -> None:
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [Paper(title="A", abstract="a"), Paper(title="B", abstract="b")], now=NOW
        )
    embedder = Embedder("m", max_tokens=128, batch_size=8)  # the model is never loaded
    for model, vector in (("m", [1.0, 0.0]), (TITLE.key("m"), [0.0, 1.0])):
        todo = missing_embeddings(store, model=model)
        vectors = np.asarray([vector] * len(todo), dtype=np.float32)
        record_embeddings(store, todo, vectors, model=model, now=NOW)
    row_of = {item.pk: row for row, item in enumerate(sorted(todo, key=lambda t: t.pk))}

    kept = row_vectors(
        store, embedder, row_of=row_of, n_rows=2, settings=RankingSettings(title_weight=0.3)
    )
    assert kept is not None and kept.titles is not None
    assert kept.titles.weight == 0.3
    assert kept.vectors.tolist() == [[1.0, 0.0], [1.0, 0.0]]
    assert kept.titles.vectors.tolist() == [[0.0, 1.0], [0.0, 1.0]]

    off = row_vectors(
        store, embedder, row_of=row_of, n_rows=2, settings=RankingSettings(title_weight=0.0)
    )
    assert off is not None and off.titles is None
    bare = row_vectors(store, embedder, row_of=row_of, n_rows=2)
    assert bare is not None and bare.titles is None and bare.has.tolist() == [True, True]
