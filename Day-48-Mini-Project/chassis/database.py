"""The service's database engine and schema creation, for PostgreSQL and SQLite alike."""

from __future__ import annotations

import zlib

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url


# --8<-- [start:sqlite]
def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` uses psycopg 3, SQLite gets WAL and a busy timeout.

    SQLite is the embedded default of ``make run``: several processes (web, relay, consumer) share
    one file, so writers wait for each other (``busy_timeout``) instead of failing at once, and
    readers never block the writer (WAL).
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)
    engine = create_engine(parsed, connect_args={"timeout": 15})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine
# --8<-- [end:sqlite]


def create_schema(engine: Engine, *metadatas: MetaData) -> None:
    """``create_all`` for each metadata, safe when several processes start at once.

    On PostgreSQL a transaction-scoped advisory lock serialises the creators; on SQLite the
    file's write lock does (``BEGIN IMMEDIATE``). The second process then finds the tables there.
    """
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": zlib.crc32(b"chassis.create_schema")})
        elif engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        for metadata in metadatas:
            metadata.create_all(connection)
        connection.commit()
