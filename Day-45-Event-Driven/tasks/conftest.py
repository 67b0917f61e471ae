"""Fixtures for the Day 45 tests: real RabbitMQ connections closed after each test, a way to play a
crash at the ack, and waiting on a condition with a deadline instead of sleeping a fixed time."""

from __future__ import annotations

import time

import pytest


def _wait_until(condition, *, timeout: float = 10.0, interval: float = 0.02, what: str = "the condition"):
    """Poll ``condition()`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout:.0f} s for {what}, in vain")
        time.sleep(interval)


class Broker:
    """Real RabbitMQ connections for one test. Each ``channel()`` has a connection of its own, so that
    closing it (``crash(channel)``) plays a consumer process dying: its unacked messages go back."""

    def __init__(self, url: str):
        import pika

        self.pika = pika
        self.parameters = pika.URLParameters(url)
        self.connections = []
        self._admin = None

    def channel(self, *, confirm: bool = True):
        """A new connection's channel, in confirm mode unless ``confirm=False``."""
        connection = self.pika.BlockingConnection(self.parameters)
        self.connections.append(connection)
        channel = connection.channel()
        if confirm:
            channel.confirm_delivery()
        return channel

    def crash(self, channel) -> None:
        """Close the channel's connection without acking anything: RabbitMQ requeues its unacked messages."""
        connection = channel.connection
        if connection.is_open:
            connection.close()

    @property
    def admin(self):
        if self._admin is None or not self._admin.is_open:
            self._admin = self.channel()
        return self._admin

    def count(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting those delivered and not yet acked)."""
        return self.admin.queue_declare(queue, passive=True).method.message_count

    def wait_count(self, queue: str, expected: int, timeout: float = 5.0) -> int:
        """Wait until ``queue`` holds ``expected`` ready messages (a message RabbitMQ requeues or
        dead-letters arrives a moment after the ack, reject or close that sent it); return the last count."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.count(queue)
            if count == expected or time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    def take_all(self, queue: str) -> list[tuple]:
        """Remove and return every ready message of ``queue`` as ``(method, properties, body)``."""
        taken = []
        while True:
            method, properties, body = self.admin.basic_get(queue, auto_ack=True)
            if method is None:
                return taken
            taken.append((method, properties, body))

    def publish(self, exchange: str, routing_key: str, body: bytes, *, message_id: str | None = None,
                mandatory: bool = True, headers: dict | None = None) -> None:
        """Publish a persistent message and wait for the broker's confirm."""
        properties = self.pika.BasicProperties(message_id=message_id, content_type="application/json",
                                               delivery_mode=2, headers=headers)
        self.admin.basic_publish(exchange, routing_key, body, properties=properties, mandatory=mandatory)

    def crash_on_ack(self, channel, crash: BaseException) -> CrashOnAck:
        """``channel`` with its first ``basic_ack`` replaced by raising ``crash``."""
        return CrashOnAck(channel, crash)

    def close(self) -> None:
        for connection in self.connections:
            try:
                if connection.is_open:
                    connection.close()
            except Exception:  # noqa: S110 - a connection the test broke on purpose
                pass


@pytest.fixture
def broker(amqp_url):
    """A ``Broker`` on the real RabbitMQ; every connection is closed, and every queue and exchange
    named through ``names`` deleted, when the test ends."""
    helper = Broker(amqp_url)
    yield helper
    helper.close()


@pytest.fixture
def wait_until():
    """``wait_until(condition, timeout=10, what=...)``: poll until ``condition()`` is truthy, or fail."""
    return _wait_until


class CrashOnAck:
    """A channel whose first ``basic_ack`` plays a crash: it raises ``crash`` and acks nothing.
    Everything else goes to the real channel."""

    def __init__(self, channel, crash: BaseException):
        self._channel = channel
        self._crash = crash
        self.crashed = False

    def basic_ack(self, *args, **kwargs):
        if not self.crashed:
            self.crashed = True
            raise self._crash
        return self._channel.basic_ack(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._channel, name)


class Postgres:
    """Connections to the test's own fresh PostgreSQL database, all closed when the test ends."""

    def __init__(self, url: str):
        import psycopg

        self.psycopg = psycopg
        self.url = url
        self.connections = []
        self._admin = None

    def connect(self, *, autocommit: bool = True):
        """A new connection (autocommit unless told otherwise): one per worker, as in a real service."""
        conn = self.psycopg.connect(self.url, autocommit=autocommit)
        self.connections.append(conn)
        return conn

    def query(self, sql: str, params=None) -> list[tuple]:
        """Run ``sql`` on a connection of the test's own (autocommit) and return its rows, if any."""
        if self._admin is None or self._admin.closed:
            self._admin = self.connect()
        cursor = self._admin.execute(sql, params)
        return cursor.fetchall() if cursor.description else []

    def scalar(self, sql: str, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def lock_waiters(self) -> int:
        """How many sessions of this database are waiting for a lock right now."""
        return self.scalar("SELECT count(*) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND wait_event_type = 'Lock'")

    def close(self) -> None:
        for conn in self.connections:
            try:
                conn.close()
            except Exception:  # noqa: S110 - a connection the test broke on purpose
                pass


@pytest.fixture
def pg(postgres_url):
    """A ``Postgres`` on a fresh database of the real server, dropped when the test ends."""
    helper = Postgres(postgres_url)
    yield helper
    helper.close()
