"""Fresh databases for the benchmarks: a SQLite file, or a database on a PostgreSQL server.

``--database-url`` of ``bench/ingest.py`` and ``bench/rank.py`` names a server database
(``postgresql+psycopg://postgres@127.0.0.1:55439/digestbot_test``); the benchmarks make
their own databases beside it (same server, other names), dropped and made again per run.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def is_sqlite(url: str) -> bool:
    return sa.make_url(url).get_backend_name() == "sqlite"


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
