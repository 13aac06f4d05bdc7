"""The one-time re-key of an older database (``aliases.refold_title_keys``) reads only the
titles whose key can have changed (a ``$``, a backslash, a non-ASCII character: the Brahmic
and Thai marks among them), selected by the database: it runs while the write lock is held, and reading every
title in Python took ~1 s per 100,000 papers. The result is that of reading them all."""

from __future__ import annotations

import hashlib
from pathlib import Path

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
