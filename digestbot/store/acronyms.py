"""Acronym definitions found in the stored papers, counted by paper.

``ranking.acronyms.paper_definitions`` finds a paper's definitions (``state space
models (SSMs)``); this table counts, per (short form, long form), the papers giving
it. It is kept at ingest, in the transaction that writes the papers: a new paper adds
its definitions, a paper whose title or abstract changed moves its counts from the
old text's to the new one's, and a paper seen again unchanged counts nothing.

A new table: ``create_all`` makes it in an older database on open, then its
``after_create`` hook fills it from the papers stored (once; a new database has none).
A profile's phrases look up their definitions in one query (``load_definitions``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.store.schema import ACRONYM_RECOUNT_VERSION, is_older_than, metadata, papers

if TYPE_CHECKING:
    from digestbot.ranking.acronyms import Counted

acronym_definitions = sa.Table(
    "acronym_definitions",
    metadata,
    # the short form's and the long form's content words, stemmed, as the index searches them
    sa.Column("short_key", sa.String(64), primary_key=True),
    sa.Column("long_key", sa.String(255), primary_key=True),
    # the long form's key with its hyphenated words joined (one spelling of several)
    sa.Column("spelling", sa.String(255), nullable=False, index=True),
    sa.Column("short_form", sa.Text, nullable=False),  # as first written
    sa.Column("long_form", sa.Text, nullable=False),  # as first written, folded
    sa.Column("papers", sa.Integer, nullable=False),
)

_CHUNK = 500
_FILL_STEP = 5000  # papers read at a time when the table is first filled


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def count_definitions(
    conn: Connection,
    added: Iterable[tuple[str, str]],
    removed: Iterable[tuple[str, str]] = (),
) -> None:
    """Count the definitions of the papers ``added`` (title, abstract) and take back those
    of the texts ``removed`` (a changed paper's earlier title and abstract). The caller
    holds the store's write lock."""
    added, removed = list(added), list(removed)
    if not added and not removed:
        return
    # imported here: ``digestbot.ranking`` imports the store
    from digestbot.ranking.acronyms import paper_definitions

    count_found(
        conn,
        [paper_definitions(title, abstract) for title, abstract in added],
        [paper_definitions(title, abstract) for title, abstract in removed],
    )


def count_found(
    conn: Connection,
    added: Iterable[Iterable[tuple[str, str, str, str, str]]],
    removed: Iterable[Iterable[tuple[str, str, str, str, str]]] = (),
) -> None:
    """``count_definitions`` of papers whose definitions were found already (each paper's
    once: ``ranking.acronyms.paper_definitions``, its fields as a tuple or not)."""
    delta: Counter[tuple[str, str]] = Counter()
    forms: dict[tuple[str, str], tuple[str, str, str, str, str]] = {}
    for sign, papers_found in ((1, added), (-1, removed)):
        for found_in_paper in papers_found:
            for found in found_in_paper:
                key = (found[0], found[1])
                delta[key] += sign
                forms.setdefault(key, found)
    changes = {key: n for key, n in delta.items() if n}
    if not changes:
        return
    table = acronym_definitions
    stored: dict[tuple[str, str], int] = {}
    shorts = sorted({short for short, _ in changes})
    for part in _chunks(shorts):
        query = sa.select(table.c.short_key, table.c.long_key, table.c.papers)
        for short, long, count in conn.execute(query.where(table.c.short_key.in_(part))):
            stored[(short, long)] = count
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for key, n in sorted(changes.items()):
        now = stored.get(key, 0) + n
        if key not in stored:
            if now > 0:
                _, _, spelling, short, long = forms[key]
                inserts.append(
                    {
                        "short_key": key[0],
                        "long_key": key[1],
                        "spelling": spelling,
                        "short_form": short,
                        "long_form": long,
                        "papers": now,
                    }
                )
        elif now > 0:
            updates.append({"b_short": key[0], "b_long": key[1], "papers": now})
        else:
            deletes.append({"b_short": key[0], "b_long": key[1]})
    match = sa.and_(
        table.c.short_key == sa.bindparam("b_short"), table.c.long_key == sa.bindparam("b_long")
    )
    if inserts:
        conn.execute(table.insert(), inserts)
    if updates:
        conn.execute(table.update().where(match).values(papers=sa.bindparam("papers")), updates)
    if deletes:
        conn.execute(table.delete().where(match), deletes)


def load_definitions(conn: Connection, keys: Iterable[str]) -> list[Counted]:
    """Every definition of each short form that one of ``keys`` (phrase keys: a short
    form's, or a long form's as written or joined) names: one query."""
    wanted = sorted(set(keys))
    if not wanted:
        return []
    from digestbot.ranking.acronyms import Counted

    table = acronym_definitions
    named = sa.select(table.c.short_key).where(
        sa.or_(
            table.c.short_key.in_(wanted),
            table.c.long_key.in_(wanted),
            table.c.spelling.in_(wanted),
        )
    )
    query = sa.select(
        table.c.short_key,
        table.c.long_key,
        table.c.spelling,
        table.c.short_form,
        table.c.long_form,
        table.c.papers,
    ).where(table.c.short_key.in_(named))
    return [Counted(*row) for row in conn.execute(query.order_by(table.c.short_key))]


def fill_definitions(conn: Connection) -> None:
    """Count the definitions of every stored paper (the table is new: nothing counted)."""
    last = 0
    while True:
        rows = conn.execute(
            sa.select(papers.c.pk, papers.c.title, papers.c.abstract)
            .where(papers.c.pk > last)
            .order_by(papers.c.pk)
            .limit(_FILL_STEP)
        ).all()
        if not rows:
            return
        count_definitions(conn, [(title, abstract or "") for _, title, abstract in rows])
        last = rows[-1][0]


def recount_definitions(conn: Connection) -> None:
    """Count every stored paper's definitions anew (the rules that find them changed)."""
    conn.execute(acronym_definitions.delete())
    fill_definitions(conn)


def _made(target: Any, connection: Connection, **_kw: Any) -> None:
    """``after_create`` of ``acronym_definitions``: a database older than it has its
    papers' definitions counted (a new one has no papers: one query), unless a schema
    step about to run counts them (``schema.version_6``)."""
    del target
    inspect = sa.inspect(connection)
    if not inspect.has_table("papers"):  # made before ``papers`` in a new database
        return
    if inspect.has_table("schema_info") and is_older_than(connection, ACRONYM_RECOUNT_VERSION):
        return
    fill_definitions(connection)


sa.event.listen(acronym_definitions, "after_create", _made)
