"""Earlier titles of retitled arXiv papers: title id -> paper.

A paper is found by title through ``papers.tid``, the title id of its current
normalised title. An arXiv paper retitled in a later version (a newer version
brings its title: ``merge_papers``) or listed by two sources under two titles
(an HF page under the first title, the arXiv feed under the revised one) keeps
the title ids it was known by here, so that a drop or feed giving an earlier
title and no arXiv id still merges into it, and ``show`` finds it by that title
or the ``t-…`` id it had then.

Only plain titles of papers with an arXiv id are kept (never the ``doi:``,
``url:``, ``text:`` keys of papers keyed apart: a generic title must not alias one
paper). The first paper an alias names keeps it; ``papers.tid`` wins over an alias.

A new table: ``create_all`` makes it in an older database on open (no schema
version step; nothing older can be recovered, so it starts empty). Made there, it
first brings the keys of titles written in TeX maths up to date
(``refold_title_keys``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from digestbot.ids import key_changed_by_folds, normalize_title, title_id_of_key
from digestbot.store.schema import metadata, papers

paper_aliases = sa.Table(
    "paper_aliases",
    metadata,
    # the title id (``ids.title_id_of_key``) of a title the paper was known by
    sa.Column("tid", sa.String(16), primary_key=True),
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False),
)

_CHUNK = 500
log = logging.getLogger(__name__)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def is_alias_key(key: str) -> bool:
    """Whether a paper key can be an alias: a (non-empty) normalised title, not a
    ``doi:``/``url:``/``text:`` key."""
    return bool(key) and ":" not in key


def aliased_pks(conn: Connection, tids: Iterable[str]) -> dict[str, int]:
    """Which of these title ids are aliases, and of which paper (one query a chunk)."""
    wanted = list(dict.fromkeys(t for t in tids if t))
    found: dict[str, int] = {}
    for part in _chunks(wanted):
        query = sa.select(paper_aliases.c.tid, paper_aliases.c.paper_pk)
        found.update(
            (tid, pk) for tid, pk in conn.execute(query.where(paper_aliases.c.tid.in_(part)))
        )
    return found


def record_aliases(conn: Connection, pairs: Iterable[tuple[str, int]]) -> None:
    """Keep these (title id, paper pk) aliases; a title id aliased already keeps its paper.
    The caller holds the write lock (no other writer between the read and the insert)."""
    wanted: dict[str, int] = {}
    for tid, pk in pairs:
        wanted.setdefault(tid, pk)
    if not wanted:
        return
    taken = aliased_pks(conn, wanted)
    rows = [{"tid": tid, "paper_pk": pk} for tid, pk in wanted.items() if tid not in taken]
    if rows:
        conn.execute(paper_aliases.insert(), rows)


def load_refold_candidates(conn: Connection) -> list[Any]:
    """The papers (pk, title, title_key, tid) whose title holds ``$``, a backslash or any
    non-ASCII character: every title ``ids.key_changed_by_folds`` may pass, chosen by the
    database in one scan, under the write lock (reading all 107,000 titles of an ASCII store
    into Python took 0.24 s, this 0.08 s: ``bench/rekey.py``). Non-ASCII is a byte length
    over the character length, cheaper in SQLite than a GLOB for the Brahmic and Thai blocks
    themselves (0.37 s). On another database than SQLite or PostgreSQL, every paper."""
    title = papers.c.title
    query = sa.select(papers.c.pk, title, papers.c.title_key, papers.c.tid)
    if conn.dialect.name == "sqlite":
        wide = sa.func.length(sa.cast(title, sa.LargeBinary)) > sa.func.length(title)
    elif conn.dialect.name == "postgresql":
        wide = sa.func.octet_length(title) > sa.func.char_length(title)
    else:
        return list(conn.execute(query))
    tex = sa.or_(title.contains("$", autoescape=True), title.contains("\\", autoescape=True))
    return list(conn.execute(query.where(sa.or_(tex, wide))))


def refold_title_keys(conn: Connection) -> int:
    """Papers whose title holds ``$``, a backslash or a Brahmic or Thai spelling mark,
    stored under the key an older digestbot made of it (before TeX maths were folded,
    ``ids.fold_tex_math``, and those marks kept), take the key their title has now; the
    old title id stays an alias (the paper's public id does not change), unless another
    paper holds that title id once the keys are changed (its ``papers.tid``): an alias
    there would outlive that paper's own retitle (``record_aliases`` keeps the first) and
    merge its old title into this paper. Papers keyed apart (``doi:``, ``url:``,
    ``text:``) keep theirs. Returns how many changed."""
    changes: list[dict[str, Any]] = []
    olds: list[tuple[str, int]] = []
    for pk, title, key, tid in load_refold_candidates(conn):  # once, when the table is made
        if not key_changed_by_folds(title):
            continue
        new = normalize_title(title)
        if not is_alias_key(key) or not new or new == key:
            continue
        changes.append({"b_pk": pk, "title_key": new, "tid": title_id_of_key(new)})
        olds.append((tid, pk))
    if changes:
        conn.execute(
            papers.update()
            .where(papers.c.pk == sa.bindparam("b_pk"))
            .values(title_key=sa.bindparam("title_key"), tid=sa.bindparam("tid")),
            changes,
        )
        held = _held_tids(conn, [tid for tid, _ in olds])
        skipped = [(tid, pk) for tid, pk in olds if tid in held]
        for tid, pk in skipped:
            log.debug(
                "re-key: %s is paper %d's own id: not an alias of paper %d", tid, held[tid], pk
            )
        if skipped:
            log.info("re-key: %d earlier title ids held by another paper: no alias", len(skipped))
        record_aliases(conn, [(tid, pk) for tid, pk in olds if tid not in held])
        log.info("re-key: %d titles took their current key", len(changes))
    return len(changes)


def _held_tids(conn: Connection, tids: Sequence[str]) -> dict[str, int]:
    """Which of these title ids a paper holds as its own (``papers.tid``), and which paper
    (the first by pk where several do)."""
    held: dict[str, int] = {}
    for part in _chunks(sorted(set(tids))):
        query = sa.select(papers.c.tid, papers.c.pk).where(papers.c.tid.in_(part))
        for tid, pk in conn.execute(query.order_by(papers.c.pk)):
            held.setdefault(tid, pk)
    return held


def _made(target: Any, connection: Connection, **_kw: Any) -> None:
    """``after_create`` of ``paper_aliases``: a database older than it has its TeX titles'
    keys brought up to date (a new one has no papers: one query)."""
    del target
    refold_title_keys(connection)


sa.event.listen(paper_aliases, "after_create", _made)
