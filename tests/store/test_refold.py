"""The one-time re-key of an older database (``aliases.refold_title_keys``) reads only the
titles whose key can have changed (a ``$``, a backslash, a non-ASCII character: the Brahmic
and Thai marks among them), selected by the database: it runs while the write lock is held, and reading every
title in Python took ~1 s per 100,000 papers. The result is that of reading them all."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from digestbot.ids import normalize_title, title_id_of_key
from digestbot.models import Paper
from digestbot.store import SqlStore
from digestbot.store.aliases import load_refold_candidates, paper_aliases, refold_title_keys
from digestbot.store.schema import papers
from tests.conftest import NOW

# title -> the key an older digestbot stored for it (before TeX maths and spelling marks)
OLD_KEYS = {
    "$\\alpha$-Divergence Bridges for $O(n^2)$ Sampling": (
        "alpha divergence bridges for o n 2 sampling"
    ),
    "A \\emph{tiny} model": "a emph tiny model",
    "การเรียนรู้ของเครื่อง": "การเร ยนร ของเคร อง",
    "दिल की बात": "द ल क ब त",
}
# read (a ``$``, a non-ASCII character), their keys unchanged: the Python check decides
READ_KEPT = [
    "Costs in US$ of training",  # a lone dollar is no TeX maths
    "Нейронные сети: обзор",
    "深度学习的注意力机制",
    "Café society: économie",
]
# titles in ASCII with neither ``$`` nor a backslash: never read by the re-key
ASCII = [
    "Linear attention for everyone",
    "100% recall_at_k: a [survey] /x/",  # LIKE and GLOB wildcards, the escape character
    "Tabs\tand\nnewlines",
]
PLAIN = READ_KEPT + ASCII


def old_tid(key: str) -> str:
    return "t-" + hashlib.sha256(key.encode()).hexdigest()[:12]


def older_database(store: SqlStore) -> dict[str, int]:
    """Every title stored, the changed ones under the old key; paper_aliases empty."""
    items = [Paper(title=t, abstract="a", arxiv_id=f"2601.{i:05d}") for i, t in enumerate(PLAIN)]
    items += [Paper(title=t, abstract="a") for t in OLD_KEYS]
    with store.transaction() as conn:
        store.upsert_papers(conn, items, now=NOW)
        for title, key in OLD_KEYS.items():
            conn.execute(
                papers.update()
                .where(papers.c.title == title)
                .values(title_key=key, tid=old_tid(key), id=old_tid(key))
            )
        conn.execute(paper_aliases.delete())
        return {t: pk for pk, t in conn.execute(sa.select(papers.c.pk, papers.c.title))}


def test_only_titles_a_fold_can_change_are_read(any_store: SqlStore) -> None:
    pks = older_database(any_store)
    with any_store.transaction() as conn:
        read = {row.title for row in load_refold_candidates(conn)}
    assert read == {*OLD_KEYS, *READ_KEPT}
    assert {pks[t] for t in read} == {pks[t] for t in (*OLD_KEYS, *READ_KEPT)}


def test_the_rekey_gives_every_changed_title_its_key_and_keeps_the_old_id(
    any_store: SqlStore,
) -> None:
    pks = older_database(any_store)
    with any_store.transaction() as conn:
        assert refold_title_keys(conn) == len(OLD_KEYS)
        rows = {r.title: r for r in conn.execute(sa.select(papers))}
        query = sa.select(paper_aliases.c.tid, paper_aliases.c.paper_pk)
        aliases = {tid: pk for tid, pk in conn.execute(query)}
    for title, old_key in OLD_KEYS.items():
        new_key = normalize_title(title)
        assert new_key != old_key
        assert rows[title].title_key == new_key
        assert rows[title].tid == title_id_of_key(new_key)
        assert rows[title].id == old_tid(old_key)  # its public id does not change
        assert aliases[old_tid(old_key)] == pks[title]
    for title in PLAIN:
        assert rows[title].title_key == normalize_title(title)
    assert len(aliases) == len(OLD_KEYS)
    with any_store.transaction() as conn:
        assert refold_title_keys(conn) == 0  # once done, nothing more


def test_an_older_sqlite_file_is_rekeyed_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = SqlStore.open(url)
    older_database(old)
    with old.transaction() as conn:
        conn.exec_driver_sql("DROP TABLE paper_aliases")
    old.close()
    store = SqlStore.open(url)
    try:
        for title, old_key in OLD_KEYS.items():
            assert store.get_paper(title).id == old_tid(old_key)
            assert store.get_paper(old_tid(old_key)).title == title
    finally:
        store.close()


TEX = "$\\alpha$-Divergence Bridges for $O(n^2)$ Sampling"
PLAINLY = "Alpha divergence bridges for O(n 2) sampling"  # its key: TEX's old key


def test_an_old_title_id_another_paper_holds_is_no_alias_and_a_later_retitle_merges_right(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An older SQLite file where a TeX title's old key is another paper's key: the re-key
    on open keeps no alias there, so that paper's own retitle makes its old title its
    alias, and a drop under that title merges into it (with the alias, into the TeX one)."""
    old_key = OLD_KEYS[TEX]
    assert normalize_title(PLAINLY) == old_key
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    old = SqlStore.open(url)
    with old.transaction() as conn:
        items = [
            Paper(title=TEX, abstract="a", arxiv_id="2601.00001", arxiv_version=1),
            Paper(title=PLAINLY, abstract="b", arxiv_id="2601.00002", arxiv_version=1),
        ]
        old.upsert_papers(conn, items, now=NOW)
        conn.execute(
            papers.update()
            .where(papers.c.title == TEX)
            .values(title_key=old_key, tid=old_tid(old_key))
        )
        conn.exec_driver_sql("DROP TABLE paper_aliases")
    old.close()
    with caplog.at_level(logging.DEBUG, logger="digestbot.store.aliases"):
        store = SqlStore.open(url)
    try:
        with store.transaction() as conn:
            query = sa.select(paper_aliases.c.tid, paper_aliases.c.paper_pk)
            assert list(conn.execute(query)) == []
        assert "1 earlier title ids held by another paper: no alias" in caplog.text
        assert f"{old_tid(old_key)} is paper 2's own id: not an alias of paper 1" in caplog.text
        assert store.get_paper(TEX).id == "2601.00001"
        assert store.get_paper(old_tid(old_key)).id == "2601.00002"
        # the second paper is retitled, then a drop (no arXiv id) brings its first title
        retitled = Paper(
            title="Bridges, renamed", abstract="b", arxiv_id="2601.00002", arxiv_version=2
        )
        with store.transaction() as conn:
            store.upsert_papers(conn, [retitled], now=NOW)
        with store.transaction() as conn:
            counts, _ = store.upsert_papers(
                conn, [Paper(title=PLAINLY, abstract="b", upvotes=7)], now=NOW
            )
        assert (counts.new, counts.merged) == (0, 1)
        assert store.get_paper("2601.00002").upvotes == 7
        assert store.get_paper("2601.00001").upvotes == 0
        assert store.get_paper(PLAINLY).id == "2601.00002"
    finally:
        store.close()
