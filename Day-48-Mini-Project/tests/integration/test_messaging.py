"""The outbox, relay and consumer on the machine's PostgreSQL and RabbitMQ."""

import json
import threading
import time
from functools import partial

import pika
import pytest
from chassis.consumer import (
    DEAD_LETTERED,
    DUPLICATE,
    PROCESSED,
    RETRY,
    handle_delivery,
)
from chassis.events import Event
from chassis.inbox import inbox_metadata
from chassis.outbox import add_to_outbox, outbox_metadata, relay_once, unsent_count
from chassis.topology import Topology, declare_topology
from chassis.unit_of_work import UnitOfWork
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import Column, MetaData, String, Table, create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

domain = MetaData()
orders = Table("orders", domain, Column("id", String, primary_key=True))
notifications = Table("notifications", domain, Column("event_id", String, primary_key=True))


class Killed(BaseException):
    """The relay or consumer process dying: no except clause, no commit."""


@pytest.fixture
def engine(postgres_url):
    engine = create_engine(make_url(postgres_url).set(drivername="postgresql+psycopg"))
    for metadata in (outbox_metadata, inbox_metadata, domain):
        metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection
    if connection.is_open:
        connection.close()


@pytest.fixture
def topology(names, connection):
    topology = Topology(names.new("events"), names.new("notifications"), ("order.*",),
                        names.new("dlx"), names.new("dlq"), max_attempts=3)
    declare_topology(connection.channel(), topology)
    return topology


@pytest.fixture
def publisher(connection):
    channel = connection.channel()
    channel.confirm_delivery()
    return channel


def place_order(engine, order_id):
    with Session(engine) as session, session.begin():
        session.execute(orders.insert().values(id=order_id))
        add_to_outbox(session, Event("order.created", "orders-service", {"order_id": order_id}))


def notify(uow, received):
    uow.session.execute(notifications.insert().values(event_id=received.id))


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def get(channel, queue, wait=5.0):
    """basic_get, waiting a little for messages that are still on their way."""
    deadline = time.monotonic() + wait
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is not None or time.monotonic() > deadline:
            return method, properties, body
        time.sleep(0.05)


def consume_one(channel, queue, engine, handler=notify, **kwargs):
    method, properties, body = get(channel, queue)
    assert method is not None, f"expected a message on {queue}, found none"
    return handle_delivery(channel, method, properties, body,
                           unit_of_work=partial(UnitOfWork, engine, "notifications-service"), handler=handler, **kwargs)


def test_the_outbox_row_commits_and_rolls_back_with_the_state_change(engine):
    place_order(engine, "o-1")
    with pytest.raises(IntegrityError), Session(engine) as session, session.begin():
        add_to_outbox(session, Event("order.created", "orders-service", {"order_id": "o-1"}))
        session.execute(orders.insert().values(id="o-1"))  # duplicate key: the whole transaction fails
    assert count(engine, orders) == 1 and unsent_count(engine) == 1


def test_a_relay_killed_between_publish_and_mark_publishes_again_and_the_inbox_drops_it(
        engine, connection, topology, publisher):
    place_order(engine, "o-1")

    class DyingChannel:
        def basic_publish(self, *args, **kwargs):
            publisher.basic_publish(*args, **kwargs)
            raise Killed

    with pytest.raises(Killed):
        relay_once(engine, DyingChannel(), topology.exchange)
    assert unsent_count(engine) == 1, "the mark must not survive the relay's death"
    assert relay_once(engine, publisher, topology.exchange) == 1
    assert unsent_count(engine) == 0

    channel = connection.channel()
    assert consume_one(channel, topology.queue, engine) == PROCESSED
    assert consume_one(channel, topology.queue, engine) == DUPLICATE
    assert count(engine, notifications) == 1, "the duplicate must not notify twice"
    assert get(channel, topology.queue, wait=0.2)[0] is None, "every delivery must be acked"


def test_a_consumer_dying_before_its_commit_gets_the_message_again(engine, amqp_url, topology, publisher):
    place_order(engine, "o-1")
    relay_once(engine, publisher, topology.exchange)

    def dies(_uow, _event):
        raise Killed

    first = pika.BlockingConnection(pika.URLParameters(amqp_url))
    with pytest.raises(Killed):
        consume_one(first.channel(), topology.queue, engine, handler=dies)
    first.close()  # unacked: the broker delivers it again
    assert count(engine, notifications) == 0
    second = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = second.channel()
        assert consume_one(channel, topology.queue, engine) == PROCESSED
        assert get(channel, topology.queue, wait=0.2)[0] is None
    finally:
        second.close()
    assert count(engine, notifications) == 1


def test_a_poison_message_is_dead_lettered_after_max_attempts(engine, connection, topology, publisher):
    place_order(engine, "o-poison")
    relay_once(engine, publisher, topology.exchange)

    def poison(_uow, _event):
        raise ValueError("cannot handle this event")

    channel = connection.channel()
    outcomes = [consume_one(channel, topology.queue, engine, handler=poison, max_attempts=topology.max_attempts)
                for _ in range(topology.max_attempts)]
    assert outcomes == [RETRY, RETRY, DEAD_LETTERED]
    method, _, body = get(channel, topology.dead_letter_queue)
    assert method is not None, "the poison message should be in the dead-letter queue"
    assert json.loads(body)["data"] == {"order_id": "o-poison"}
    channel.basic_ack(method.delivery_tag)
    assert get(channel, topology.queue, wait=0.2)[0] is None


def test_trace_context_survives_the_amqp_hop(engine, connection, topology, publisher):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /orders") as request_span:
        place_order(engine, "o-1")
    relay_once(engine, publisher, topology.exchange, tracer=tracer)  # later, outside the request's trace

    seen = []
    outcome = consume_one(connection.channel(), topology.queue, engine, tracer=tracer,
                          handler=lambda uow, e: seen.append(trace.get_current_span().get_span_context()))
    assert outcome == PROCESSED
    assert seen[0].trace_id == request_span.get_span_context().trace_id, "the consumer is in the request's trace"
    spans = exporter.get_finished_spans()
    [producer_span] = [s for s in spans if s.kind == trace.SpanKind.PRODUCER]
    [consumer_span] = [s for s in spans if s.kind == trace.SpanKind.CONSUMER]
    assert producer_span.parent.span_id == request_span.get_span_context().span_id, "the relay continues the request"
    assert consumer_span.parent.span_id == producer_span.get_span_context().span_id, "the consumer continues the publish"


def test_two_relays_at_once_never_publish_a_row_twice(engine, topology, amqp_url, publisher):
    for n in range(4):
        place_order(engine, f"o-{n}")
    holding, release = threading.Event(), threading.Event()
    published = []

    class SlowChannel:
        def basic_publish(self, exchange, routing_key, body, **kwargs):
            holding.set()
            release.wait(5)
            published.append(body)

    first = threading.Thread(target=relay_once, args=(engine, SlowChannel(), topology.exchange))
    first.start()
    try:
        assert holding.wait(5)
        assert relay_once(engine, publisher, topology.exchange) == 0, "the rows locked by the first relay are skipped"
    finally:
        release.set()
        first.join(5)
    assert len(published) == 4 and unsent_count(engine) == 0
