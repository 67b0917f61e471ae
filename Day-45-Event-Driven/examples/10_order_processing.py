"""Order processing with RabbitMQ: a transactional outbox, an idempotent consumer, a dead-letter queue.

What it shows, against a real PostgreSQL and a real RabbitMQ:

- the **orders service** writes the order and its ``order.placed`` event (a row in ``outbox``) in
  ONE transaction: both or neither. It never talks to the broker while handling a request, so the
  broker being down cannot lose an event or leave an order without one. An invalid order rolls
  back, and leaves no event behind;
- the **outbox relay** claims unsent rows with ``SELECT ... FOR UPDATE SKIP LOCKED`` (two relays
  running at once take different rows), publishes each with publisher confirms and
  ``mandatory=True`` (the outbox row's id becomes the ``message_id``), and marks them sent in the
  same transaction. A relay that crashes after publishing and before committing leaves the rows
  unsent, so they are published again: the outbox gives **at-least-once**, and duplicates;
- the **fulfilment consumer** is idempotent: in one transaction it records the ``message_id`` in
  ``processed_messages`` (the *inbox*: primary key, ``ON CONFLICT DO NOTHING``) and does its work
  (a pick list for the warehouse); if the id was already there, it does nothing. It acks only
  after the commit. The duplicate from the crashed relay is ignored: one pick list per order;
- a **poison message** (a legacy producer's body that is not JSON) is rejected without requeue and
  dead-lettered to a queue where someone can look at it, instead of being redelivered for ever.

Run it (needs PostgreSQL at $DATABASE_URL, as a role allowed to create databases, and RabbitMQ at
$AMQP_URL; under a second):

    python Day-45-Event-Driven/examples/10_order_processing.py

Both services share one database here, in two schemas, to keep the example short; in production
each has its own. The database, exchange and queues carry a unique per-run name and are removed at
the end; the queues also expire (``x-expires``) and the exchange auto-deletes if it is killed.
"""

import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pika
import pika.exceptions
import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@localhost:5432/postgres")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

# --8<-- [start:schema]
SCHEMA = """
CREATE TABLE orders (
    id       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer text    NOT NULL,
    sku      text    NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    status   text    NOT NULL DEFAULT 'PLACED'
);
CREATE TABLE outbox (
    id         uuid        PRIMARY KEY,          -- becomes the message_id: the consumers' idempotency key
    event_type text        NOT NULL,             -- becomes the routing key
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at    timestamptz                       -- NULL until the broker has confirmed it
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;

CREATE SCHEMA fulfilment;                        -- the consumer's own tables
CREATE TABLE fulfilment.processed_messages (     -- the inbox
    message_id   uuid        PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE fulfilment.pick_lists (             -- the side effect: no unique key of its own
    id       bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint  NOT NULL,
    sku      text    NOT NULL,
    quantity integer NOT NULL
);
"""
# --8<-- [end:schema]


# --8<-- [start:place_order]
def place_order(conn: psycopg.Connection, customer: str, sku: str, quantity: int) -> int:
    """The orders service's write: the order and its event, in one transaction."""
    with conn.transaction():
        (order_id,) = conn.execute(
            "INSERT INTO orders (customer, sku, quantity) VALUES (%s, %s, %s) RETURNING id",
            (customer, sku, quantity),
        ).fetchone()
        event = {"order_id": order_id, "customer": customer, "sku": sku, "quantity": quantity}
        conn.execute(
            "INSERT INTO outbox (id, event_type, payload) VALUES (%s, 'order.placed', %s)",
            (uuid.uuid4(), json.dumps(event)),
        )
    return order_id
    # --8<-- [end:place_order]


# --8<-- [start:relay]
@contextmanager
def claimed_batch(conn: psycopg.Connection, limit: int) -> Iterator[list[tuple]]:
    """Lock up to ``limit`` unsent rows (skipping rows another relay holds); mark them sent on exit.
    An exception inside the block rolls back: the rows stay unsent, to be published again."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT id, event_type, payload FROM outbox WHERE sent_at IS NULL "
            "ORDER BY created_at LIMIT %s FOR UPDATE SKIP LOCKED",
            (limit,),
        ).fetchall()
        yield rows
        conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY(%s)", ([row[0] for row in rows],))


def publish_rows(channel, exchange: str, rows: list[tuple]) -> None:
    """On a channel in confirm mode: each publish returns once the broker has the message, and
    raises NackError or UnroutableError otherwise, which rolls the batch back."""
    for outbox_id, event_type, payload in rows:
        channel.basic_publish(
            exchange,
            event_type,
            json.dumps(payload).encode(),
            pika.BasicProperties(
                message_id=str(outbox_id),
                type=event_type,
                content_type="application/json",
                delivery_mode=pika.DeliveryMode.Persistent,
            ),
            mandatory=True,  # no queue bound: UnroutableError, and the row stays unsent
        )


def relay_once(conn: psycopg.Connection, channel, exchange: str, limit: int = 100) -> list[int]:
    with claimed_batch(conn, limit) as rows:
        publish_rows(channel, exchange, rows)
    return [payload["order_id"] for _, _, payload in rows]
    # --8<-- [end:relay]


# --8<-- [start:consumer]
def handle(conn: psycopg.Connection, channel, method, properties, body: bytes) -> tuple[str, str]:
    """Process one order.placed message once, however often it is delivered. Returns (outcome, detail)."""
    try:
        event = json.loads(body)
        message_id = uuid.UUID(properties.message_id)
        order_id, sku, quantity = event["order_id"], event["sku"], int(event["quantity"])
    except (ValueError, TypeError, KeyError) as error:
        # Poison: no retry will ever parse it. Reject without requeue: the queue dead-letters it.
        channel.basic_reject(method.delivery_tag, requeue=False)
        return "dead-lettered", f"{type(error).__name__}: {error}"
    with conn.transaction():
        first_time = conn.execute(
            "INSERT INTO fulfilment.processed_messages (message_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (message_id,),
        ).rowcount
        if first_time:
            conn.execute(
                "INSERT INTO fulfilment.pick_lists (order_id, sku, quantity) VALUES (%s, %s, %s)",
                (order_id, sku, quantity),
            )
    channel.basic_ack(method.delivery_tag)  # only after the commit: a crash before it means redelivery
    return ("pick list created" if first_time else "duplicate ignored"), f"order {order_id}"
    # --8<-- [end:consumer]


def consume(conn: psycopg.Connection, channel, queue: str, expected: int, timeout: float = 10) -> list[str]:
    """Handle messages until ``expected`` have been handled; return their outcomes."""
    outcomes = []
    channel.basic_qos(prefetch_count=10)
    deadline = time.monotonic() + timeout
    for method, properties, body in channel.consume(queue, inactivity_timeout=0.1):
        if method is not None:
            outcome, detail = handle(conn, channel, method, properties, body)
            print(f"  message {(properties.message_id or 'no id')[:8]}: {detail}: {outcome}")
            outcomes.append(outcome)
        if len(outcomes) == expected or time.monotonic() > deadline:
            break
    channel.cancel()
    return outcomes


def declare_topology(channel, exchange: str, work: str, dead: str) -> None:
    channel.exchange_declare(exchange, "topic", durable=True, auto_delete=True)
    channel.queue_declare(dead, durable=True, arguments={"x-expires": 60_000})
    channel.queue_declare(
        work,
        durable=True,
        arguments={"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead, "x-expires": 60_000},
    )
    channel.queue_bind(work, exchange, routing_key="order.placed")


def main() -> int:
    run = uuid.uuid4().hex[:8]
    database = f"day45_{run}_orders"
    exchange, work, dead = (
        f"day45-{run}.orders",
        f"day45-{run}.fulfilment.order-placed",
        f"day45-{run}.fulfilment.dead-letter",
    )
    try:
        admin = psycopg.connect(DATABASE_URL, autocommit=True)
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except (psycopg.OperationalError, pika.exceptions.AMQPConnectionError) as error:
        print(
            f"this example needs PostgreSQL at {DATABASE_URL} and RabbitMQ at {AMQP_URL}: {error!r}",
            file=sys.stderr,
        )
        return 1
    channel = connection.channel()
    channel.confirm_delivery()
    failures = []
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        url = make_conninfo(**{**conninfo_to_dict(DATABASE_URL), "dbname": database})
        declare_topology(channel, exchange, work, dead)
        with (
            psycopg.connect(url) as orders_db,
            psycopg.connect(url) as other_relay_db,
            psycopg.connect(url) as fulfilment_db,
        ):
            orders_db.execute(SCHEMA)
            orders_db.commit()

            print("Orders service: each order and its event in one transaction")
            for customer, sku, quantity in (
                ("ada", "teapot", 1),
                ("grace", "mug", 2),
                ("alan", "kettle", 1),
                ("ada", "mug", 4),
            ):
                print(
                    f"  order {place_order(orders_db, customer, sku, quantity)} placed: {quantity} x {sku} for {customer}"
                )
            try:
                place_order(orders_db, "bob", "teapot", 0)
            except psycopg.errors.CheckViolation:
                print("  an order for 0 teapots: CHECK violation, rolled back: no order and no event")
                print("  (the order id it drew stays unused: sequences do not roll back)")
            (unsent,) = orders_db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
            print(f"  outbox: {unsent} unsent events")

            # --8<-- [start:two_relays]
            print("\nTwo relays at once (FOR UPDATE SKIP LOCKED):")
            with claimed_batch(orders_db, limit=2) as first:
                with claimed_batch(other_relay_db, limit=2) as second:  # skips the rows `first` holds
                    publish_rows(channel, exchange, second)
                publish_rows(channel, exchange, first)
            print(
                f"  relay A published orders {[p['order_id'] for *_, p in first]}, "
                f"relay B orders {[p['order_id'] for *_, p in second]}: no row taken twice"
            )
            # --8<-- [end:two_relays]

            # --8<-- [start:relay_crash]
            order_id = place_order(orders_db, "grace", "teapot", 1)
            print(f"\nOrder {order_id} placed; the relay publishes it and crashes before it commits:")
            try:
                with claimed_batch(orders_db, limit=100) as rows:
                    publish_rows(channel, exchange, rows)
                    raise RuntimeError("relay process killed")
            except RuntimeError as crash:
                print(f"  {crash}: rolled back, so the outbox row is still unsent")
            print(
                f"  the restarted relay publishes orders {relay_once(orders_db, channel, exchange)} (again)"
            )
            # --8<-- [end:relay_crash]
            (unsent,) = orders_db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()
            orders_db.commit()

            channel.basic_publish(
                exchange,
                "order.placed",
                b'<order ref="A-17">legacy XML</order>',
                pika.BasicProperties(message_id=str(uuid.uuid4())),
            )
            print("  and a legacy producer publishes an order.placed that is not JSON")

            print("\nFulfilment consumer (idempotent, acks after commit):")
            # The consumer is another service: its own connection to the broker, its own to the database.
            fulfilment = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
            try:
                outcomes = consume(fulfilment_db, fulfilment.channel(), work, expected=7)
            finally:
                fulfilment.close()
            (pick_lists,) = fulfilment_db.execute("SELECT count(*) FROM fulfilment.pick_lists").fetchone()
            (per_order,) = fulfilment_db.execute(
                "SELECT max(n) FROM (SELECT count(*) AS n FROM fulfilment.pick_lists GROUP BY order_id) AS c"
            ).fetchone()
            fulfilment_db.commit()

        dead_method, dead_properties, dead_body = channel.basic_get(dead, auto_ack=True)
        death = (dead_properties.headers or {}).get("x-death", [{}])[0] if dead_method else {}
        print(
            f"\nDead-letter queue: {dead_body!r}, x-death reason {death.get('reason')!r} from {death.get('queue')!r}"
        )
        kinds = Counter(outcomes)
        print(
            f"outbox unsent {unsent}; pick lists {pick_lists} for 5 orders, at most {per_order} per order; {dict(kinds)}"
        )
        if not (
            unsent == 0
            and pick_lists == 5
            and per_order == 1
            and dead_body
            and kinds["duplicate ignored"] == 1
        ):
            failures.append("the outbox, the inbox or the dead-letter queue did not behave as described")
    finally:
        for queue in (work, dead):
            channel.queue_delete(queue)
        channel.exchange_delete(exchange)
        connection.close()
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        admin.close()

    if failures:
        print("FAILED: " + "; ".join(failures), file=sys.stderr)
        return 1
    print(
        "\nEvery order was fulfilled exactly once: the duplicate was ignored, the poison message dead-lettered"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
