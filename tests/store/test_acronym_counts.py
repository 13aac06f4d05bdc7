"""The papers' acronym definitions, counted at ingest (``store.acronyms``)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from digestbot.ingest import ingest_paths
from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.acronyms import acronym_definitions, load_definitions
from digestbot.store.schema import schema_info
from tests.conftest import NOW

KAN = ("kan", "kolmogorov arnold network")


def counts(store: SqlStore) -> dict[tuple[str, str], int]:
    table = acronym_definitions
    with store.transaction() as conn:
        rows = conn.execute(sa.select(table.c.short_key, table.c.long_key, table.c.papers))
        return {(short, long): n for short, long, n in rows}


def kan_papers() -> list[Paper]:
    return [
        Paper(title="KANs for physics", abstract="Kolmogorov-Arnold networks (KANs) fit laws."),
        Paper(
            title="Symbolic regression",
            abstract="Kolmogorov-Arnold networks (KAN) are small. We prune "
            "Kolmogorov-Arnold networks (KANs) and graph neural networks (GNNs).",
        ),
    ]


def test_each_paper_counts_a_definition_once_and_seeing_it_again_counts_nothing(
    any_store: SqlStore,
) -> None:
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, kan_papers(), now=NOW)
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}
    with any_store.transaction() as conn:  # the same papers again: merged, unchanged
        any_store.upsert_papers(conn, kan_papers(), now=NOW + timedelta(days=1))
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}


def test_a_new_version_of_a_paper_moves_its_counts_to_its_new_text(any_store: SqlStore) -> None:
    first = Paper(
        title="Networks",
        abstract="Kolmogorov-Arnold networks (KANs) fit laws.",
        arxiv_id="2401.00001",
        arxiv_version=1,
    )
    other = Paper(title="More KANs", abstract="We prune Kolmogorov-Arnold networks (KANs).")
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, [first, other], now=NOW)
    second = Paper(
        title="Networks",
        abstract="Vision transformers (ViTs) fit images; so do state space models (SSMs).",
        arxiv_id="2401.00001",
        arxiv_version=2,
    )
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, [second], now=NOW + timedelta(days=1))
    assert counts(any_store) == {
        KAN: 1,
        ("vit", "vision transform"): 1,
        ("ssm", "state space model"): 1,
    }


def test_the_writer_of_drops_counts_the_new_papers(tmp_path: Path, store: SqlStore) -> None:
    drops = tmp_path / "drops"
    drops.mkdir()
    entries = [
        ("KANs for physics", "Kolmogorov-Arnold networks (KANs) fit laws."),
        ("KANs for tables", "We prune Kolmogorov-Arnold networks (KANs)."),
        ("Plain", "No acronym (here) at all."),
    ]
    text = "Daily Papers\n\nJan 8\n\n" + "".join(
        f"{title}\n\n{abstract}\n\n  • 2 authors\n·\nJan 7, 2026\n\n" for title, abstract in entries
    )
    (drops / "a.txt").write_text(text, encoding="utf-8")
    assert ingest_paths(store, [drops / "a.txt"], now=NOW).ok
    assert counts(store) == {KAN: 2}
    # the same papers in another file: merged into the stored ones, nothing counted again
    (drops / "b.txt").write_text(text.replace("Jan 8", "Jan 9"), encoding="utf-8")
    assert ingest_paths(store, [drops / "b.txt"], now=NOW + timedelta(days=1)).ok
    assert counts(store) == {KAN: 2}


def test_a_database_made_before_the_table_has_it_filled_from_its_papers(
    any_store: SqlStore,
) -> None:
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, kan_papers(), now=NOW)
        conn.execute(sa.text("DROP TABLE acronym_definitions"))
    any_store.create_schema()  # what opening it does: the missing table is made, then filled
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}
    any_store.create_schema()  # opening it again counts nothing twice
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}


def test_a_version_5_database_has_its_acronyms_counted_again_by_the_new_rules(
    any_store: SqlStore,
) -> None:
    papers = [
        *kan_papers(),
        Paper(title="Ranking", abstract="LLMs (large language models such as GPT-4) rank."),
    ]
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, papers, now=NOW)
        # what version 5's rules counted: the whole parenthesis as LLM's long form
        conn.execute(
            acronym_definitions.insert().values(
                short_key="llm",
                long_key="larg languag model gpt 4",
                spelling="larg languag model gpt4",
                short_form="LLM",
                long_form="large language models such as gpt-4",
                papers=1,
            )
        )
        conn.execute(schema_info.update().where(schema_info.c.key == "version").values(value="5"))
    any_store.create_schema()  # what opening it does
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}
    with any_store.transaction() as conn:
        version = conn.execute(
            sa.select(schema_info.c.value).where(schema_info.c.key == "version")
        ).scalar_one()
    assert version == "6"


def test_a_version_5_database_without_the_table_has_it_filled_once(any_store: SqlStore) -> None:
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, kan_papers(), now=NOW)
        conn.execute(sa.text("DROP TABLE acronym_definitions"))
        conn.execute(schema_info.update().where(schema_info.c.key == "version").values(value="5"))
    any_store.create_schema()  # the table is made, and the version 6 step counts it
    assert counts(any_store) == {KAN: 2, ("gnn", "graph neural network"): 1}


def test_a_profile_phrase_finds_every_long_form_of_its_short_form(any_store: SqlStore) -> None:
    papers = [
        Paper(title=f"Paper {i}", abstract=f"We study {long} ({short}) here.")
        for i, (long, short) in enumerate(
            [
                ("segment anything models", "SAM"),
                ("segment anything models", "SAM"),
                ("sharpness-aware minimization", "SAM"),
                ("masked autoencoders", "MAEs"),
            ]
        )
    ]
    with any_store.transaction() as conn:
        any_store.upsert_papers(conn, papers, now=NOW)
    with any_store.transaction() as conn:
        # by the long form's key: every definition of its short form, MAE's not
        found = load_definitions(conn, ["segment model"])  # "anything": a stop word
        joined = load_definitions(conn, ["sharpnessawar minim"])  # the joined spelling
    assert sorted((d.long, d.papers) for d in found) == [
        ("segment anything models", 2),
        ("sharpness-aware minimization", 1),
    ]
    assert sorted(d.long for d in joined) == sorted(d.long for d in found)
