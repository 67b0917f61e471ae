"""An idempotent consumer: RabbitMQ delivers at least once, so the consumer makes applying a message
an effectively-once operation, with an inbox table in the same PostgreSQL transaction as the
side effect.

Contract (``conn`` is a psycopg 3 connection in **autocommit** mode: a transaction is what you open
with ``with conn.transaction():``; ``channel`` is a pika ``BlockingChannel``):

- ``create_schema(conn)`` creates, if missing, the ``accounts`` table (``ACCOUNTS_DDL``, given) and
  the inbox: a table ``inbox`` whose ``message_id text`` column is its primary key (unique), with
  a ``processed_at timestamptz`` defaulting to ``now()``.
- ``handle_message(conn, message_id, event, apply=credit_account) -> bool`` in **one** transaction
  records ``message_id`` in the inbox and calls ``apply(conn, event)`` (the side effect: SQL on
  the same connection), and commits. Returns True when it applied the event, False when the inbox
  already had ``message_id`` (nothing applied, nothing changed). If ``apply`` raises, or the
  commit fails, nothing of it remains (no inbox row, no side effect) and the exception propagates.
  Two workers handling the same ``message_id`` at the same time: one applies it, the other gets
  False, and neither raises (the unique inbox key makes the second wait for the first; take
  ``INSERT ... ON CONFLICT DO NOTHING``'s row count as the answer, or catch ``UniqueViolation``).
- ``process_one(channel, queue, conn, apply=credit_account) -> str | None`` takes one message from
  ``queue`` (``basic_get``, manual ack) and returns:

  | outcome | when | then |
  |---|---|---|
  | ``None`` | the queue is empty | |
  | ``"rejected"`` | no ``message_id`` property, or a body that is not a JSON object | ``basic_reject(requeue=False)``, nothing applied |
  | ``"applied"`` | ``handle_message`` returned True | ack **after** the commit |
  | ``"duplicate"`` | ``handle_message`` returned False | ack |

  If ``handle_message`` raises (the side effect failed, the commit failed, the process is dying),
  the message is neither acked nor rejected nor nacked: the exception propagates, and RabbitMQ
  redelivers the message when the connection closes (a reject would drop or dead-letter a message
  that was never applied; a requeue at once would bring it straight back, failing in a loop).

Why this order: ack before the commit and a crash in between loses the message (acked, never
applied); commit then crash before the ack and RabbitMQ redelivers it, which the inbox turns into a
harmless duplicate.
"""

from __future__ import annotations

import json  # noqa: F401 - json.loads(body) in process_one
from collections.abc import Callable

import psycopg

ACCOUNTS_DDL = "CREATE TABLE IF NOT EXISTS accounts (id text PRIMARY KEY, balance bigint NOT NULL DEFAULT 0)"

class UnknownAccount(Exception):
    """The event names an account that does not exist."""


def credit_account(conn: psycopg.Connection, event: dict) -> None:
    """The side effect of an event ``{"account": "acc-1", "amount": 10}``: add ``amount`` to the balance."""
    cursor = conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s",
                          (event["amount"], event["account"]))
    if cursor.rowcount != 1:
        raise UnknownAccount(event["account"])


Apply = Callable[[psycopg.Connection, dict], None]


def create_schema(conn: psycopg.Connection) -> None:
    """Create ``accounts`` and ``inbox`` if they do not exist."""
    raise NotImplementedError(
        "TODO: in one transaction, conn.execute(ACCOUNTS_DDL) and CREATE TABLE IF NOT EXISTS inbox "
        "(message_id text PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())"
    )


def handle_message(conn: psycopg.Connection, message_id: str, event: dict, apply: Apply = credit_account) -> bool:
    """Apply ``event`` once per ``message_id``: inbox row and side effect in one transaction."""
    raise NotImplementedError(
        "TODO: with conn.transaction(): INSERT INTO inbox ... ON CONFLICT (message_id) DO NOTHING; rowcount 0 -> "
        "return False; else apply(conn, event); after the block (committed) return True"
    )


def process_one(channel, queue: str, conn: psycopg.Connection, apply: Apply = credit_account) -> str | None:
    """Take one message from ``queue``, apply it at most once, and ack it after the commit."""
    raise NotImplementedError(
        "TODO: basic_get(queue, auto_ack=False); None if empty; no message_id or a body that is not a JSON "
        "object -> basic_reject(requeue=False), 'rejected'; handle_message(...), then basic_ack; "
        "'applied' or 'duplicate'"
    )
