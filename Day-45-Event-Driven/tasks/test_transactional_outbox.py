"""Tests of task `outbox-relay`: the order and its event in one transaction, and a relay that
publishes the outbox to a real RabbitMQ with confirms, at least once, in order, never twice at once.

Each test gets a fresh PostgreSQL database (dropped afterwards) and an exchange and queue named
through ``names``. Needs PostgreSQL (DATABASE_URL) and, for the relay, RabbitMQ (AMQP_URL).
Run: pytest Day-45-Event-Driven/tasks/test_transactional_outbox.py

Each clause of the contract (the stub's docstring) and the tests that guard it:

- create_schema: the outbox's columns, types, nullability, defaults, unique message_id; safe twice
  -> test_the_outbox_table_is_as_the_contract_says, test_place_order_writes_the_order_and_its_event_together
- place_order: order and outbox row in one transaction, routing key order.created, the payload,
  a new uuid4().hex message_id returned -> test_place_order_writes_the_order_and_its_event_together
- ... either insert fails: neither row remains, the error propagates
  -> test_an_order_that_fails_leaves_no_event, test_an_event_that_fails_leaves_no_order
- relay_once: up to `batch` rows, returns how many -> test_the_relay_publishes_in_batches
- ... oldest id first (not the order rows happen to be stored in)
  -> test_the_relay_publishes_in_id_order_whatever_the_storage_order
- ... to the exchange with the row's own routing key, the payload as JSON body, message_id,
  application/json, persistent -> test_the_relay_publishes_in_order_with_confirms_and_marks_the_rows,
  test_the_relay_publishes_in_id_order_whatever_the_storage_order
- ... mandatory=True, marked only after the confirm -> test_an_unroutable_event_is_not_marked_published
- ... a publish raises: that row and the rest stay unpublished, the rows before it stay marked,
  the exception propagates -> test_a_refused_publish_keeps_the_marks_of_the_rows_before_it
- ... a crash (not an Exception) mid-batch loses nothing -> test_a_crash_mid_batch_loses_nothing
- ... FOR UPDATE SKIP LOCKED: two relays never publish a row twice
  -> test_two_relays_at_once_never_publish_a_row_twice (threads)
"""

import json
import re
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
    assert other != message_id, f"every event gets a new unique message_id: {message_id!r} twice"
    for got in (message_id, other):
        assert isinstance(got, str) and re.fullmatch(r"[0-9a-f]{32}", got), \
            f"the message_id is uuid.uuid4().hex, 32 lower-case hex digits; got {got!r}"


def test_the_outbox_table_is_as_the_contract_says(pg):
    ready(pg)
    columns = {name: (data_type, nullable, default or "") for name, data_type, nullable, default in pg.query(
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'outbox'")}
    expected = {"id": ("bigint", "NO"), "message_id": ("text", "NO"), "routing_key": ("text", "NO"),
                "payload": ("jsonb", "NO"), "created_at": ("timestamp with time zone", None),
                "published_at": ("timestamp with time zone", "YES")}
    for name, (data_type, nullable) in expected.items():
        assert name in columns, f"the outbox table has no column {name!r}; its columns are {sorted(columns)}"
        got_type, got_nullable, _ = columns[name]
        assert got_type == data_type, f"outbox.{name} is {data_type}, got {got_type}"
        if nullable is not None:
            assert got_nullable == nullable, \
                f"outbox.{name} must be {'NOT NULL' if nullable == 'NO' else 'nullable (null until published)'}"
    assert columns["id"][2].startswith("nextval("), \
        f"outbox.id is a bigserial (its default draws from a sequence: the publishing order), got default {columns['id'][2]!r}"
    assert "now()" in columns["created_at"][2], f"outbox.created_at defaults to now(), got {columns['created_at'][2]!r}"
    assert columns["published_at"][2] == "", f"outbox.published_at has no default (null until published), got {columns['published_at'][2]!r}"
    pg.query("INSERT INTO outbox (message_id, routing_key, payload) VALUES ('m-1', 'order.created', '{}')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        pg.query("INSERT INTO outbox (message_id, routing_key, payload) VALUES ('m-1', 'order.created', '{}')")
        pytest.fail("outbox.message_id must be UNIQUE: two events with one id would be taken for one by the inbox")


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
def test_the_relay_publishes_in_id_order_whatever_the_storage_order(broker, names, pg):
    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    ids = [ob.place_order(conn, f"o-{i}", "ada", i) for i in range(6)]
    pg.query("INSERT INTO outbox (message_id, routing_key, payload) VALUES "
             "('cancel-o-1', 'order.cancelled', '{\"order_id\": \"o-1\"}')")
    ids.append("cancel-o-1")
    # An UPDATE writes a new version of the row at the end of the table: the rows of o-0, o-3 and o-1
    # are now stored last, so a SELECT without ORDER BY returns o-2, o-4, o-5, cancel, o-0, o-3, o-1.
    for order_id in ("o-0", "o-3", "o-1"):
        pg.query("UPDATE outbox SET created_at = created_at WHERE payload->>'order_id' = %s "
                 "AND routing_key = 'order.created'", (order_id,))
    stored = [row[0] for row in pg.query("SELECT message_id FROM outbox")]
    assert stored != ids, "the test could not store the rows out of order"  # a check of the test itself
    # No index scans on the relay's connection: a query that asks for no order gets the storage order.
    for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
        conn.execute(f"SET {setting} = off")
    assert ob.relay_once(conn, broker.channel(), exchange, batch=4) == 4
    assert ob.relay_once(conn, broker.channel(), exchange, batch=4) == 3
    taken = broker.take_all(queue)
    label = {mid: f"o-{i}" for i, mid in enumerate(ids[:6])} | {"cancel-o-1": "cancel-o-1"}
    got = [label.get(p.message_id, p.message_id) for _, p, _ in taken]
    assert got == [label[mid] for mid in ids], (
        f"the relay publishes the oldest rows first, by id (the outbox's order), whatever order the table stores "
        f"them in: SELECT ... ORDER BY id LIMIT batch. Expected {[label[mid] for mid in ids]}, got {got}")
    keys = [m.routing_key for m, _, _ in taken]
    assert keys == ["order.created"] * 6 + ["order.cancelled"], \
        f"each row is published with its own routing key, got {keys}"


class FailsOnThirdPublish:
    """The relay's channel, whose 3rd publish raises ``error`` (a broker's nack, a crash); the others go through."""

    def __init__(self, channel, error: BaseException):
        self.channel, self.error, self.published = channel, error, 0

    def basic_publish(self, *args, **kwargs):
        if self.published == 2:
            raise self.error
        self.published += 1
        return self.channel.basic_publish(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.channel, name)


@pytest.mark.rabbitmq
def test_a_refused_publish_keeps_the_marks_of_the_rows_before_it(broker, names, pg):
    from pika.exceptions import NackError

    conn = ready(pg)
    exchange, queue = exchange_and_queue(broker, names)
    ids = [ob.place_order(conn, f"o-{i}", "ada", i) for i in range(5)]
    with pytest.raises(NackError):
        ob.relay_once(conn, FailsOnThirdPublish(broker.channel(), NackError([])), exchange)
        pytest.fail("the broker refused the 3rd event (NackError): relay_once must let the exception propagate")
    marked = [row[0] for row in pg.query("SELECT message_id FROM outbox WHERE published_at IS NOT NULL ORDER BY id")]
    assert marked == ids[:2], (
        f"o-0 and o-1 were confirmed before the broker refused o-2: their marks must be committed (and o-2, o-3, "
        f"o-4 stay unpublished); the rows marked published are {marked}. Stop at the failing row, leave the "
        f"transaction block normally so that it commits, then re-raise; raising inside the block rolls the "
        f"marks back and the next run publishes o-0 and o-1 twice")
    assert ob.relay_once(pg.connect(), broker.channel(), exchange) == 3, "the next run publishes the 3 rows left"
    got = [mid for mid, _ in received(broker, queue)]
    assert got == ids, f"every event once, in order, nothing twice: expected {ids}, got {got}"


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
    with pytest.raises(Crash):
        ob.relay_once(conn, FailsOnThirdPublish(broker.channel(), Crash("the relay died while publishing the 3rd event")),
                      exchange)
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
