"""The SQLite engine of `make run`: several processes open one new file at once, and none fails."""

from __future__ import annotations

import multiprocessing
import sqlite3

import pytest
from chassis.database import create_database_engine, create_schema, switch_to_wal
from sqlalchemy import Column, Integer, MetaData, Table, text


def open_and_read(url: str, start, results) -> None:
    start.wait(10)
    try:
        engine = create_database_engine(url)
        schema = MetaData()
        for number in range(10):
            Table(f"table_{number}", schema, Column("id", Integer, primary_key=True))
        create_schema(engine, schema)  # as each process of a service does when it starts
        with engine.connect() as connection:
            mode = connection.execute(text("PRAGMA journal_mode")).scalar_one()
        engine.dispose()
        results.put(mode)
    except Exception as error:  # reported to the test, not lost in the child
        results.put(f"{type(error).__name__}: {error}")


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path):
    # As `make run` does: web, relay and consumer of one service start together on a file that does
    # not exist yet. Each turns it to WAL; the losers of that race must wait, not crash.
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    url = f"sqlite:///{tmp_path / 'new.db'}"
    workers = [context.Process(target=open_and_read, args=(url, start, results)) for _ in range(8)]
    for worker in workers:
        worker.start()
    start.set()
    modes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
    assert modes == ["wal"] * 8, modes


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
