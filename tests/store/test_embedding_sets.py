"""A paper's vectors under two model keys (title + abstract, title alone), counted and
read in one pass each."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.embeddings import (
    count_missing_embeddings,
    count_missing_sets,
    load_embeddings,
    load_vector_changes,
    missing_embeddings,
    record_embeddings,
    title_key,
)
from tests.conftest import NOW


def test_both_keys_are_counted_and_read_apart(any_store: SqlStore) -> None:
    store = any_store
    with store.transaction() as conn:
        store.upsert_papers(
            conn, [Paper(title=f"Paper {i}", abstract=f"Topic {i}.") for i in range(3)], now=NOW
        )
    titles = title_key("m")
    assert titles == "m#title"
    assert count_missing_sets(store, models=["m", titles]) == {"m": 3, titles: 3}
    todo = missing_embeddings(store, model="m")
    record_embeddings(store, todo, np.ones((3, 2), "f4"), model="m", now=NOW)
    first = missing_embeddings(store, model=titles)[:1]
    record_embeddings(store, first, np.full((1, 2), 2.0, "f4"), model=titles, now=NOW)
    assert count_missing_sets(store, models=["m", titles]) == {"m": 0, titles: 2}
    assert count_missing_sets(store, models=[titles]) == {titles: 2}
    later = NOW + timedelta(days=1)
    assert count_missing_sets(store, models=["m", titles], since=later) == {"m": 0, titles: 0}
    with store.transaction() as conn:  # more upvotes: both of its vectors are stale
        again = Paper(title=first[0].title, abstract=first[0].abstract, upvotes=5)
        store.upsert_papers(conn, [again], now=later)
    assert count_missing_sets(store, models=["m", titles]) == {"m": 1, titles: 3}
    assert count_missing_embeddings(store, model="m") == 1

    sets = load_vector_changes(store, models=["m", titles, "other"], since=None).sets
    assert sorted(sets["m"][0].tolist()) == sorted(t.pk for t in todo)
    assert sets["m"][1].tolist() == [[1.0, 1.0]] * 3
    assert sets[titles][0].tolist() == [first[0].pk]
    assert sets[titles][1].tolist() == [[2.0, 2.0]]
    assert sets["other"][0].shape == (0,) and sets["other"][1].shape == (0, 0)
    pks, vectors = load_embeddings(store, model=titles)
    assert pks.tolist() == [first[0].pk] and vectors.tolist() == [[2.0, 2.0]]
