"""The SQLite engine of `make run`: several processes open one new file at once, and none fails."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from chassis.database import switch_to_wal

DAY_48 = Path(__file__).resolve().parents[2]


OPEN_AND_CREATE = """
import sys
sys.path.insert(0, sys.argv[1])
from chassis.database import create_database_engine, create_schema
from sqlalchemy import Column, Integer, MetaData, Table, text
engine = create_database_engine(sys.argv[2])
schema = MetaData()
for number in range(10):
    Table(f"table_{number}", schema, Column("id", Integer, primary_key=True))
create_schema(engine, schema)  # as each process of a service does when it starts
with engine.connect() as connection:
    print(connection.execute(text("PRAGMA journal_mode")).scalar_one())
"""


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path):
    # As `make run` does: web, relay and consumer of one service start together on a file that does
    # not exist yet. Each turns it to WAL; the losers of that race must wait, not crash.
    url = f"sqlite:///{tmp_path / 'new.db'}"
    processes = [subprocess.Popen([sys.executable, "-c", OPEN_AND_CREATE, str(DAY_48), url],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(8)]
    answers = [process.communicate(timeout=120) for process in processes]
    assert [out.strip() for out, _ in answers] == ["wal"] * 8, "\n".join(err[-1500:] for _, err in answers)


class LockedOnce:
    def __init__(self, failures: int, message: str = "database is locked"):
        self.failures, self.message, self.calls = failures, message, 0

    def execute(self, statement):
        self.calls += 1
        if self.calls <= self.failures:
            raise sqlite3.OperationalError(self.message)


def test_the_switch_is_retried_while_the_file_is_locked_and_other_errors_are_not():
    cursor = LockedOnce(failures=3)
    switch_to_wal(cursor, pause=0)
    assert cursor.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        switch_to_wal(LockedOnce(failures=1, message="disk I/O error"), pause=0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        switch_to_wal(LockedOnce(failures=10), attempts=3, pause=0)


def test_every_connection_gets_the_settings_that_keep_writers_short(tmp_path):
    """WAL (readers never block the writer), a busy timeout (writers wait for each other) and
    synchronous=NORMAL (no fsync per commit while the one write lock is held), on every connection
    of the pool: SQLite keeps only the journal mode in the file."""
    from chassis.database import create_database_engine
    from sqlalchemy import text

    engine = create_database_engine(f"sqlite:///{tmp_path / 'service.db'}")
    try:
        with engine.connect() as first, engine.connect() as second:
            for connection in (first, second):
                settings = {name: connection.execute(text(f"PRAGMA {name}")).scalar_one()
                            for name in ("journal_mode", "busy_timeout", "synchronous", "foreign_keys")}
                assert settings == {"journal_mode": "wal", "busy_timeout": 15000, "synchronous": 1,
                                    "foreign_keys": 1}, f"a connection of the pool runs with {settings}"
    finally:
        engine.dispose()
