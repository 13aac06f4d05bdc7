"""Fresh databases for the benchmarks: a SQLite file, or a database on a PostgreSQL server.

``--database-url`` of ``bench/ingest.py``, ``bench/rank.py`` and ``bench/digest_send.py``
names a server database (``postgresql+psycopg://postgres@127.0.0.1:55439/digestbot_test``);
the benchmarks make their own databases beside it (same server, other names), dropped and
made again per run (``server_url``: the option read, the ranking index's cache folder set).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sqlalchemy as sa


def is_sqlite(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


def server_url(database_url: str | None, *, cache_home: Path) -> str | None:
    """The PostgreSQL database ``--database-url`` names, or None (not given, or SQLite).
    A server store's ranking index lives in the user cache: ``cache_home`` here."""
    if not database_url or is_sqlite(database_url):
        return None
    os.environ["XDG_CACHE_HOME"] = str(cache_home)
    return database_url


def _admin(url: str) -> sa.Engine:
    """The server's maintenance database, outside transactions (CREATE/DROP DATABASE)."""
    return sa.create_engine(sa.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def server_database(url: str, name: str, *, template: str | None = None) -> str:
    """``name`` on ``url``'s server, dropped and made again (a copy of ``template`` if given)."""
    engine = _admin(url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    engine.dispose()
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


def database_exists(url: str) -> bool:
    if is_sqlite(url):
        return Path(sa.make_url(url).database or "").exists()
    engine = _admin(url)
    with engine.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
            {"name": sa.make_url(url).database},
        ).first()
    engine.dispose()
    return found is not None


def drop_server_database(url: str) -> None:
    engine = _admin(url)
    with engine.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)')
    engine.dispose()


def database_name(url: str) -> str:
    return sa.make_url(url).database or ""


def copy_store(url: str, target: Path, *, name: str) -> str:
    """A fresh copy of the store at ``url`` with its ranking index (so a run times only its
    own work, not an index rebuild); returns the copy's URL. ``target`` is emptied first.

    SQLite: the file copied into ``target``, its ``.index`` folder beside it. PostgreSQL:
    the database ``name`` on the same server, made with ``CREATE DATABASE ... TEMPLATE``,
    its index copied into the copy's default folder (``$XDG_CACHE_HOME``)."""
    from digestbot.ranking.persist import default_index_dir
    from digestbot.store import SqlStore

    source = SqlStore.open(url, create=False)
    index = default_index_dir(source)
    source.close()
    if index is None or not index.is_dir():
        raise SystemExit(f"{url}: no ranking index to copy (bring it up to date first)")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    if is_sqlite(url):
        db = Path(sa.make_url(url).database or "")
        shutil.copy2(db, target / db.name)
        copy_url = f"sqlite:///{target / db.name}"
    else:
        copy_url = server_database(url, name, template=database_name(url))
    copy = SqlStore.open(copy_url, create=False)
    copy_index = default_index_dir(copy)
    copy.close()
    if copy_index is not None:
        shutil.rmtree(copy_index, ignore_errors=True)
        shutil.copytree(index, copy_index)
    return copy_url
