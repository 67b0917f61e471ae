"""Per-run names for everything a test creates on a shared server, and their clean-up.

Tests share RabbitMQ, Redis and PostgreSQL with whatever else runs on the machine, and with the
other pytest-xdist workers. Every queue, exchange, key, stream and database a test creates is
named through :class:`Names`, and removed after the test.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from urllib.parse import urlsplit


def run_prefix() -> str:
    """One prefix per test process: the run, then the xdist worker (``gw0``...)."""
    run = os.environ.setdefault("LAB_RUN_ID", uuid.uuid4().hex[:8])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"lab-{run}-{worker}"


class Names:
    """Hands out unique names under one prefix and remembers them for clean-up."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.issued: list[str] = []
        self._counter = itertools.count(1)

    def new(self, label: str = "x") -> str:
        name = f"{self.prefix}-{label}-{next(self._counter)}"
        self.issued.append(name)
        return name

    def sql(self, label: str = "x") -> str:
        """A name fit for an unquoted SQL identifier (lower case, underscores)."""
        return re.sub(r"[^a-z0-9_]", "_", self.new(label).lower())


def delete_redis_keys(client, prefix: str) -> int:
    keys = list(client.scan_iter(match=f"{prefix}*", count=500))
    if keys:
        client.delete(*keys)
    return len(keys)


# Queues and exchanges that code derives from a name it is given (Day 48's chassis declares
# "<queue>.dead-letter" and "<exchange>.unrouted"): deleted along with the name they come from.
DERIVED_SUFFIXES = (".dead-letter", ".unrouted")


def delete_amqp_names(url: str, names: list[str]) -> None:
    """Delete every queue and exchange named, and those derived from them; missing ones are fine."""
    import pika

    if not names:
        return
    names = [*names, *(f"{name}{suffix}" for name in names for suffix in DERIVED_SUFFIXES)]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for name in names:
            for delete in ("queue_delete", "exchange_delete"):
                channel = connection.channel()  # a failed delete closes its channel
                try:
                    getattr(channel, delete)(name)
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker:
                    pass
    finally:
        connection.close()


def database_url(server_url: str, database: str) -> str:
    """``server_url`` with its database swapped for ``database``; the query (``?sslmode=...``) is kept."""
    return urlsplit(server_url)._replace(path=f"/{database}").geturl()


def create_database(server_url: str, database: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    return database_url(server_url, database)


def drop_database(server_url: str, database: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
