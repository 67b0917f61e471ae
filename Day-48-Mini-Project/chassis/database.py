"""The service's database engine and schema creation, and the two places where PostgreSQL and SQLite
differ under the services' SQL, written once: inserting a row unless one with the same key is there,
and reading back a timestamp (SQLite returns it without its time zone)."""

from __future__ import annotations

import sqlite3
import time
import zlib
from datetime import UTC, datetime

from sqlalchemy import Engine, MetaData, Table, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url


# --8<-- [start:sqlite]
def create_database_engine(url: str) -> Engine:
    """An engine for ``url``; ``postgresql://`` uses psycopg 3, SQLite gets WAL, a busy timeout and
    ``synchronous=NORMAL``.

    SQLite is the embedded default of ``make run``: several processes (web, relay, consumer) share
    one file, so writers wait for each other (``busy_timeout``) instead of failing at once, and
    readers never block the writer (WAL). In WAL mode ``synchronous=NORMAL`` syncs the log at
    checkpoints instead of at every commit: a commit still survives the crash of any process, but
    the last ones may be lost if the machine loses power. With one writer at a time, an fsync per
    commit (2 to 4 ms here) held the write lock that every other process was waiting for.
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
        cursor.execute("PRAGMA busy_timeout=15000")
        switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")  # per connection: SQLite does not store it in the file
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def switch_to_wal(cursor, attempts: int = 100, pause: float = 0.05) -> None:
    """``PRAGMA journal_mode=WAL``, retried while another process holds the lock it needs.

    The first processes to open a new file (`make run` starts six at once per service) each try to
    turn it to WAL, which needs the file to themselves; SQLite refuses the losers at once with
    "database is locked" instead of waiting out ``busy_timeout`` (waiting could deadlock). Once one
    has switched, the mode is stored in the file and the pragma is a read for everyone else.
    """
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(pause)
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


def insert_ignoring_duplicates(session, table: Table, key: str):
    """``INSERT ... ON CONFLICT (key) DO NOTHING`` for the session's database: add ``.values(...)``,
    and ``.returning(column)`` to learn whether the row went in (``None`` back: it was there already).

    The unique index decides, not a SELECT before: two transactions inserting the same key at once
    cannot both succeed, and the second one waits for the first (PostgreSQL) or for the file's write
    lock (SQLite) before it finds the row."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=[key])


def as_utc(moment: datetime) -> datetime:
    """A timestamp read back from the database, in UTC. SQLite keeps no time zone and gives back
    naive datetimes; every time the services write is UTC, so a naive one is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
