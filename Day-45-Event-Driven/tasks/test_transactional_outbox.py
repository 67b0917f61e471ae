"""Tests of task `outbox-relay`: the order and its event in one transaction, and a relay that
publishes the outbox to a real RabbitMQ with confirms, at least once, in order, never twice at once.

Each test gets a fresh PostgreSQL database (dropped afterwards) and an exchange and queue named
through ``names``. Needs PostgreSQL (DATABASE_URL) and, for the relay, RabbitMQ (AMQP_URL).
Run: pytest Day-45-Event-Driven/tasks/test_transactional_outbox.py
"""

import json
import threading

import psycopg
import pytest

from lab import load_task

ob = load_task(__file__, "transactional_outbox")

pytestmark = pytest.mark.postgres


class Crash(BaseException):  # noqa: N818 - plays the process dying; `except Exception` misses it
    pass


def ready(pg):
    conn = pg.connect()
    ob.create_schema(conn)
    return conn


def outbox(pg) -> list[tuple]:
    return pg.query("SELECT message_id, routing_key, payload, published_at IS NOT NULL FROM outbox ORDER BY id")


def unpublished(pg) -> int:
    return pg.scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")


def exchange_and_queue(broker, names):
    """A durable topic exchange and a queue bound to it with 'order.*'."""
    exchange, queue = names.new("orders"), names.new("order-events")
    broker.admin.exchange_declare(exchange, exchange_type="topic", durable=True)
    broker.admin.queue_declare(queue, durable=True)
    broker.admin.queue_bind(queue, exchange, routing_key="order.*")
    return exchange, queue


def received(broker, queue) -> list[tuple]:
    """(message_id, order_id) of every message in ``queue``, in order (taken off the queue)."""
    return [(props.message_id, json.loads(body)["order_id"]) for _, props, body in broker.take_all(queue)]


# --- writing the order and its event -----------------------------------------------------------------


def test_place_order_writes_the_order_and_its_event_together(pg):
    conn = ready(pg)
    ob.create_schema(conn)  # twice: must not fail
    message_id = ob.place_order(conn, "o-1", "ada", 4200)
    assert pg.query("SELECT id, customer, total_cents FROM orders") == [("o-1", "ada", 4200)], \
        f"the order row is committed: {pg.query('SELECT * FROM orders')}"
    rows = outbox(pg)
    assert rows == [(message_id, "order.created", {"order_id": "o-1", "customer": "ada", "total_cents": 4200}, False)], (
        f"one unpublished outbox row: (message_id returned, 'order.created', the payload, not published); got {rows}")
    other = ob.place_order(conn, "o-2", "bob", 100)
    assert other != message_id and len(other) >= 16, f"every event gets a new unique message_id: {message_id!r}, {other!r}"


def test_an_order_that_fails_leaves_no_event(pg):
    conn = ready(pg)
    ob.place_order(conn, "o-1", "ada", 4200)
    with pytest.raises(psycopg.errors.UniqueViolation):
        ob.place_order(conn, "o-1", "eve", 1)
    assert len(outbox(pg)) == 1, (
        f"placing o-1 a second time failed, so its event must not be in the outbox; it holds {len(outbox(pg))} rows. "
        "Insert the order and the event in one transaction")


def test_an_event_that_fails_leaves_no_order(pg):
    conn = ready(pg)
    pg.query("""CREATE FUNCTION no_mallory() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.payload->>'customer' = 'mallory' THEN RAISE EXCEPTION 'outbox refused'; END IF;
                RETURN NEW; END $$""")
    pg.query("CREATE TRIGGER no_mallory BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION no_mallory()")
    with pytest.raises(psycopg.Error):
        ob.place_order(conn, "o-9", "mallory", 1)
    orders = pg.query("SELECT id FROM orders")
    assert orders == [], (
        f"the outbox insert failed, so the order must not be saved either, but orders holds {orders}: an order "
        "without its event is never announced")


# --- the relay -------------------------------------------------------------------------------------


@pytest.mark.rabbitmq
def test_the_relay_publishes_in_order_with_confirms_and_marks_the_rows(broker, names, pg):
    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    ids = [ob.place_order(conn, f"o-{i}", "ada", i) for i in range(5)]
    assert ob.relay_once(conn, broker.channel(), exchange) == 5, "5 unpublished rows: relay_once returns 5"
    taken = broker.take_all(queue)
    got = [(p.message_id, json.loads(b)["order_id"]) for _, p, b in taken]
    assert got == [(mid, f"o-{i}") for i, mid in enumerate(ids)], \
        f"every event once, in the order of the outbox, with its message_id: got {got}"
    method, properties, body = taken[0]
    assert method.routing_key == "order.created" and properties.delivery_mode == 2 and \
        properties.content_type == "application/json", \
        f"routing key order.created, persistent, application/json: got {method.routing_key}, {properties}"
    assert json.loads(body) == {"order_id": "o-0", "customer": "ada", "total_cents": 0}
    assert unpublished(pg) == 0, f"published rows are marked (published_at): {unpublished(pg)} are not"
    assert ob.relay_once(conn, broker.channel(), exchange) == 0 and broker.count(queue) == 0, \
        "a second run finds nothing to publish and sends nothing again"


@pytest.mark.rabbitmq
def test_the_relay_publishes_in_batches(broker, names, pg):
    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    for i in range(7):
        ob.place_order(conn, f"o-{i}", "ada", i)
    counts = [ob.relay_once(conn, broker.channel(), exchange, batch=3) for _ in range(4)]
    assert counts == [3, 3, 1, 0], f"7 rows, batch=3: runs publish 3, 3, 1, 0; got {counts}"
    assert [oid for _, oid in received(broker, queue)] == [f"o-{i}" for i in range(7)]


@pytest.mark.rabbitmq
def test_an_unroutable_event_is_not_marked_published(broker, names, pg):
    conn = ready(pg)
    exchange = names.new("orders")
    broker.admin.exchange_declare(exchange, exchange_type="topic", durable=True)  # no queue bound yet
    ob.place_order(conn, "o-1", "ada", 1)
    with pytest.raises(Exception):  # noqa: B017 - pika's UnroutableError or your own
        ob.relay_once(conn, broker.channel(), exchange)
        pytest.fail("no queue is bound: the publish (mandatory=True, confirmed) is returned, and relay_once must raise")
    assert unpublished(pg) == 1, (
        "the broker did not take the event, yet the row was marked published: it is lost. Publish with "
        "mandatory=True on a confirm-mode channel and mark the row only after basic_publish returned")
    queue = names.new("order-events")
    broker.admin.queue_declare(queue, durable=True)
    broker.admin.queue_bind(queue, exchange, routing_key="order.*")
    assert ob.relay_once(pg.connect(), broker.channel(), exchange) == 1, "once a queue is bound, the next run publishes it"
    assert [oid for _, oid in received(broker, queue)] == ["o-1"]


@pytest.mark.rabbitmq
def test_a_crash_mid_batch_loses_nothing(broker, names, pg):
    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    ids = [ob.place_order(conn, f"o-{i}", "ada", i) for i in range(5)]
    channel = broker.channel()

    class DiesOnThirdPublish:
        def __init__(self):
            self.published = 0

        def basic_publish(self, *args, **kwargs):
            if self.published == 2:
                raise Crash("the relay died while publishing the 3rd event")
            self.published += 1
            return channel.basic_publish(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(channel, name)

    with pytest.raises(Crash):
        ob.relay_once(conn, DiesOnThirdPublish(), exchange)
    conn.close()  # the process is gone: whatever it had not committed is rolled back
    ob.relay_once(pg.connect(), broker.channel(), exchange)
    got = received(broker, queue)
    missing = [f"o-{i}" for i, mid in enumerate(ids) if (mid, f"o-{i}") not in got]
    assert not missing, (
        f"after a relay died mid-batch and another ran, every event must have been published at least once; "
        f"missing {missing}. Mark a row only after its publish was confirmed, in the transaction that locked it")
    assert {mid for mid, _ in got} == set(ids) and unpublished(pg) == 0, \
        f"a re-sent event keeps its message_id (the consumer's inbox dedupes it); got {got}"


@pytest.mark.rabbitmq
def test_two_relays_at_once_never_publish_a_row_twice(broker, names, pg):
    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    ids = [ob.place_order(conn, f"o-{i}", "ada", i) for i in range(10)]
    a_publishing, b_done = threading.Event(), threading.Event()
    a_channel = broker.channel()

    class WaitsForB:
        """Relay A's channel: its first publish waits (up to 3 s) until relay B has run."""

        def basic_publish(self, *args, **kwargs):
            a_publishing.set()
            b_done.wait(timeout=3)
            return a_channel.basic_publish(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(a_channel, name)

    outcome = {}

    def relay_a():
        try:
            outcome["a"] = ob.relay_once(pg.connect(), WaitsForB(), exchange, batch=5)
        except BaseException as error:  # noqa: BLE001 - reported below
            outcome["a"] = error

    thread = threading.Thread(target=relay_a, daemon=True)
    thread.start()
    assert a_publishing.wait(timeout=20), "relay A never published anything"
    try:
        outcome["b"] = ob.relay_once(pg.connect(), broker.channel(), exchange, batch=5)
    finally:
        b_done.set()
        thread.join(timeout=30)
    assert not isinstance(outcome.get("a"), BaseException), f"relay A failed: {outcome.get('a')!r}"
    got = [mid for mid, _ in received(broker, queue)]
    twice = sorted({mid for mid in got if got.count(mid) > 1})
    assert not twice, (
        f"relay A held rows 1-5 while relay B ran: B must skip them, but {len(twice)} events were published by both. "
        "Take the rows with SELECT ... FOR UPDATE SKIP LOCKED in the transaction that marks them")
    assert sorted(got) == sorted(ids) and unpublished(pg) == 0, \
        f"between them the two relays publish all 10 events: got {len(got)}, {unpublished(pg)} left unpublished"
