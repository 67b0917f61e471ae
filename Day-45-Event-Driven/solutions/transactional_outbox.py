"""A transactional outbox: the order and the event announcing it are written in one PostgreSQL
transaction, and a relay publishes the event to RabbitMQ afterwards, so that an order is never
saved without its event nor its event sent for an order that was never saved.

Contract (``conn`` is a psycopg 3 connection in **autocommit** mode: open a transaction with
``with conn.transaction():``; ``channel`` is a pika ``BlockingChannel`` in confirm mode):

- ``create_schema(conn)`` creates, if missing, the ``orders`` table (``ORDERS_DDL``, given) and the
  outbox table ``outbox``: ``id bigserial`` primary key (the publishing order), ``message_id text``
  unique and not null, ``routing_key text`` not null, ``payload jsonb`` not null, ``created_at
  timestamptz`` defaulting to ``now()``, and ``published_at timestamptz`` (null until published).
- ``place_order(conn, order_id, customer, total_cents) -> str`` inserts the order and, in the
  **same transaction**, one outbox row: routing key ``"order.created"``, payload ``{"order_id",
  "customer", "total_cents"}``, a new unique ``message_id`` (``uuid4().hex``), which it returns. If
  either insert fails (an ``order_id`` that exists, a database error), neither row remains and the
  error propagates.
- ``relay_once(conn, channel, exchange, *, batch=100) -> int`` publishes up to ``batch`` unpublished
  outbox rows, oldest ``id`` first, and returns how many. Each goes to ``exchange`` with its
  routing key, its payload as the JSON body, ``message_id``, ``content_type="application/json"``,
  persistent, ``mandatory=True``; with confirms, ``basic_publish`` returns when the broker has it
  and raises when it is refused or unroutable. A row is marked published (``published_at``) only
  after its publish was confirmed; if a publish raises an ``Exception``, that row and the rest of
  the batch stay unpublished, the rows confirmed before it stay marked (commit their marks, then
  re-raise: the broker has them, and un-marking them would publish them twice), and the exception
  propagates. Several relays may run at once: lock the rows you take
  (``SELECT ... FOR UPDATE SKIP LOCKED`` inside the transaction that marks them), so that no row
  is published by two relays.

A crash after a publish and before the mark sends that row again on the next run: the outbox is
at-least-once, with the same ``message_id``, for the consumer's inbox to deduplicate.
"""

from __future__ import annotations

import json
import uuid

import pika
import psycopg

ORDERS_DDL = """
CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY,
    customer text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

OUTBOX_DDL = """
CREATE TABLE IF NOT EXISTS outbox (
    id bigserial PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    routing_key text NOT NULL,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
)
"""


def create_schema(conn: psycopg.Connection) -> None:
    """Create ``orders`` and ``outbox`` if they do not exist."""
    with conn.transaction():
        conn.execute(ORDERS_DDL)
        conn.execute(OUTBOX_DDL)
        # The relay looks for unpublished rows in id order: a partial index keeps that cheap.
        conn.execute("CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL")


def place_order(conn: psycopg.Connection, order_id: str, customer: str, total_cents: int) -> str:
    """Save the order and its ``order.created`` event in one transaction; return the event's message_id."""
    message_id = uuid.uuid4().hex
    payload = {"order_id": order_id, "customer": customer, "total_cents": total_cents}
    with conn.transaction():
        conn.execute("INSERT INTO orders (id, customer, total_cents) VALUES (%s, %s, %s)",
                     (order_id, customer, total_cents))
        conn.execute("INSERT INTO outbox (message_id, routing_key, payload) VALUES (%s, %s, %s)",
                     (message_id, "order.created", json.dumps(payload)))
    return message_id


def relay_once(conn: psycopg.Connection, channel, exchange: str, *, batch: int = 100) -> int:
    """Publish up to ``batch`` unpublished outbox rows in order, marking each after its confirm."""
    published, failure = 0, None
    with conn.transaction():
        # The row locks last until the commit: another relay skips these rows instead of sending them too.
        rows = conn.execute(
            "SELECT id, message_id, routing_key, payload FROM outbox WHERE published_at IS NULL "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (batch,)).fetchall()
        for row_id, message_id, routing_key, payload in rows:
            properties = pika.BasicProperties(message_id=message_id, content_type="application/json",
                                              delivery_mode=pika.DeliveryMode.Persistent)
            try:
                channel.basic_publish(exchange, routing_key, json.dumps(payload).encode(),
                                      properties=properties, mandatory=True)
            except Exception as error:  # refused or unroutable: this row and the rest stay unpublished
                failure = error
                break
            conn.execute("UPDATE outbox SET published_at = now() WHERE id = %s", (row_id,))
            published += 1
    if failure is not None:
        raise failure  # after the commit: the rows confirmed before it keep their marks
    return published
