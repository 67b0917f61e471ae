"""orders-service's relay and consumer on the machine's PostgreSQL and RabbitMQ, with an exchange
and queues of the test's own (never the shared ``events``)."""

import json
import threading
from functools import partial

import pytest
from chassis.consumer import DUPLICATE
from chassis.database import create_database_engine
from chassis.events import Event, amqp_properties
from chassis.metrics import ServiceMetrics
from chassis.outbox import outbox, unsent_count
from chassis.unit_of_work import UnitOfWork
from chassis.workers import run_consumer, run_relay
from orders_service import order_service
from orders_service.app import create_app
from orders_service.event_handlers import router
from orders_service.order_request import RequestedLine
from orders_service.service import SERVICE
from orders_service.settings import SERVICE_NAME, Settings
from polling import wait_for
from sqlalchemy import select

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

ALICE = "a" * 32
wait = partial(wait_for, timeout=20.0, interval=0.05)


@pytest.fixture
def settings(postgres_url, amqp_url, names):
    queue = names.new("orders")
    return Settings.from_env({"DATABASE_URL": postgres_url, "AMQP_URL": amqp_url,
                              "EVENTS_EXCHANGE": names.new("events"), "CONSUMER_QUEUE": queue,
                              "MAX_DELIVERY_ATTEMPTS": "3"})


@pytest.fixture
def engine(settings):
    engine = create_database_engine(settings.service.database_url)
    SERVICE.prepare_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def app(settings, engine, token_keys):
    return create_app(settings, verifier=token_keys.verifier(), engine=engine)


@pytest.fixture
def channel(settings, topology_channel):
    return topology_channel(settings, router)


@pytest.fixture
def listener(names, settings, channel):
    """A queue bound to every order event on the test exchange, as notifications-service's would be."""
    queue = names.new("listener")
    channel.queue_declare(queue, durable=True, arguments={"x-expires": 120_000})  # 4.3 refuses transient ones
    channel.queue_bind(queue, settings.service.events_exchange, routing_key="order.*")
    return queue


@pytest.fixture
def worker(engine, settings):
    """``worker(run_relay)`` or ``worker(run_consumer, topology, handler)``: a worker loop in a thread,
    stopped and joined when the test ends."""
    running = []

    def start(loop, *args, **kwargs):
        stop = threading.Event()
        thread = threading.Thread(target=loop, args=(engine, settings.service, *args, stop), kwargs=kwargs,
                                  daemon=True)
        thread.start()
        running.append((stop, thread))

    yield start
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(timeout=10)
        assert not thread.is_alive(), "a worker did not stop when asked"


def received(channel, queue, event_type):
    """The next message on ``queue`` of ``event_type`` (others are acked and skipped), or None."""
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return None
        if properties.type == event_type:
            return properties, json.loads(body)


def publish(channel, settings, event):
    channel.basic_publish(settings.service.events_exchange, event.type, event.to_json(),
                          properties=amqp_properties(event), mandatory=True)


def status_of(engine, order_id):
    return order_service.get_order(UnitOfWork(engine, SERVICE_NAME), ALICE, order_id)["status"]


def outbox_data(engine, event_type):
    with engine.connect() as connection:
        rows = connection.execute(select(outbox.c.body).where(outbox.c.event_type == event_type)).scalars()
        return [json.loads(body)["data"] for body in rows]


def test_a_placed_order_reaches_the_exchange_through_the_relay(app, engine, channel, listener, settings, worker,
                                                               token_keys):
    response = app.test_client().post("/orders", json={"lines": [{"sku": "mouse", "quantity": 3}]},
                                      headers={"Authorization": f"Bearer {token_keys.issue(ALICE)}"})
    assert response.status_code == 201
    order = response.get_json()
    worker(run_relay)
    properties, event = wait(lambda: received(channel, listener, "order.created"),
                                   message="order.created on the listener queue")
    assert event["type"] == "order.created" and event["source"] == "orders-service"
    assert event["data"] == {"order_id": order["id"], "user_id": ALICE, "total_cents": 5997, "currency": "EUR",
                             "lines": [{"sku": "mouse", "quantity": 3, "unit_price_cents": 1999}]}
    assert properties.content_type == "application/cloudevents+json" and properties.delivery_mode == 2
    wait(lambda: unsent_count(engine) == 0, message="the outbox row marked sent")


def test_credit_reserved_on_the_exchange_approves_the_order(engine, channel, settings, worker):
    order = order_service.place_order(UnitOfWork(engine, SERVICE_NAME), ALICE,
                                      (RequestedLine("keyboard", 1),)).body
    metrics = ServiceMetrics()
    worker(run_consumer, router.topology(settings.service), router, metrics=metrics)
    reserved = Event("credit.reserved", "users-service",
                     {"order_id": order["id"], "user_id": ALICE, "amount_cents": order["total_cents"]})
    publish(channel, settings, reserved)
    publish(channel, settings, reserved)  # redelivered: the inbox drops it
    wait(lambda: status_of(engine, order["id"]) == "APPROVED", message="the order to be APPROVED")
    wait(lambda: outbox_data(engine, "order.approved"), message="order.approved in the outbox")
    duplicates = {"event_type": "credit.reserved", "outcome": DUPLICATE}
    wait(lambda: metrics.registry.get_sample_value("events_consumed_total", duplicates) == 1,
               message="the redelivery to be dropped as a duplicate")
    assert outbox_data(engine, "order.approved") == [
        {"order_id": order["id"], "user_id": ALICE, "total_cents": order["total_cents"]}]


def test_the_whole_saga_round_trip(app, engine, channel, listener, settings, worker, token_keys):
    worker(run_relay)
    worker(run_consumer, router.topology(settings.service), router)
    response = app.test_client().post("/orders", json={"lines": [{"sku": "workstation", "quantity": 1}]},
                                      headers={"Authorization": f"Bearer {token_keys.issue(ALICE)}"})
    order = response.get_json()
    _, created = wait(lambda: received(channel, listener, "order.created"), message="order.created")
    # Standing in for users-service: the workstation is over the default credit limit.
    publish(channel, settings, Event("credit.rejected", "users-service", {
        "order_id": created["data"]["order_id"], "user_id": ALICE, "amount_cents": 250000,
        "reason": "insufficient_credit"}))
    _, rejected = wait(lambda: received(channel, listener, "order.rejected"), message="order.rejected")
    assert rejected["data"] == {"order_id": order["id"], "user_id": ALICE, "reason": "insufficient_credit"}
    assert status_of(engine, order["id"]) == "REJECTED"
