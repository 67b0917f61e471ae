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

import json  # noqa: F401 - the payload as JSON
import uuid  # noqa: F401 - uuid.uuid4().hex for message ids

import pika  # noqa: F401 - pika.BasicProperties for the published messages
import psycopg

ORDERS_DDL = """
CREATE TABLE IF NOT EXISTS orders (
    id text PRIMARY KEY,
    customer text NOT NULL,
    total_cents bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""

def create_schema(conn: psycopg.Connection) -> None:
    """Create ``orders`` and ``outbox`` if they do not exist."""
    raise NotImplementedError(
        "TODO: in one transaction conn.execute(ORDERS_DDL) and CREATE TABLE IF NOT EXISTS outbox (id bigserial "
        "PRIMARY KEY, message_id text NOT NULL UNIQUE, routing_key text NOT NULL, payload jsonb NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now(), published_at timestamptz)"
    )


def place_order(conn: psycopg.Connection, order_id: str, customer: str, total_cents: int) -> str:
    """Save the order and its ``order.created`` event in one transaction; return the event's message_id."""
    raise NotImplementedError(
        "TODO: with conn.transaction(): INSERT the order, INSERT the outbox row (message_id, 'order.created', "
        "json.dumps(payload)); return the message_id"
    )


def relay_once(conn: psycopg.Connection, channel, exchange: str, *, batch: int = 100) -> int:
    """Publish up to ``batch`` unpublished outbox rows in order, marking each after its confirm."""
    raise NotImplementedError(
        "TODO: with conn.transaction(): SELECT ... WHERE published_at IS NULL ORDER BY id LIMIT batch FOR UPDATE "
        "SKIP LOCKED; basic_publish each (mandatory=True, message_id, persistent), then UPDATE its published_at; "
        "if a publish raises, stop, commit the marks made so far and re-raise after the block; return the number "
        "published"
    )
