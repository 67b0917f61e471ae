"""users-service with its relay and consumer on real PostgreSQL and RabbitMQ, on a test exchange:
registration reaches the broker as ``user.registered``; an ``order.created`` from the broker becomes a
credit reservation and a ``credit.reserved`` in the outbox, then on the broker."""

import json
import os
import threading
from functools import partial

import pika
import pytest
from chassis.config import ServiceConfig
from chassis.database import create_schema
from chassis.inbox import inbox_metadata
from chassis.outbox import outbox
from chassis.topology import declare_topology
from chassis.workers import run_consumer, run_relay
from polling import wait_for
from sqlalchemy import select
from users_service import passwords
from users_service.app import create_app
from users_service.event_handlers import router
from users_service.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]
wait = partial(wait_for, timeout=20.0, interval=0.05)


@pytest.fixture
def settings(postgres_url, amqp_url, names, tmp_path, token_keys):
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(token_keys.private_pem)
    os.chmod(key_file, 0o600)
    queue = names.new("users-service")
    service = ServiceConfig.from_env("users-service", {
        "DATABASE_URL": postgres_url, "AMQP_URL": amqp_url, "EVENTS_EXCHANGE": names.new("events"),
        "CONSUMER_QUEUE": queue, "LOG_LEVEL": "WARNING"})
    return Settings(service=service, jwt_private_key_file=str(key_file))


@pytest.fixture
def channel(amqp_url):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection.channel()
    connection.close()


@pytest.fixture
def workers(settings):
    """The relay and the consumer, each in a thread, until the test ends."""
    started = []

    def start(engine):
        stop = threading.Event()
        topology = router.topology(settings.service)
        for target, args in ((run_relay, (engine, settings.service, stop)),
                             (run_consumer, (engine, settings.service, topology, router, stop))):
            thread = threading.Thread(target=target, args=args, daemon=True)
            thread.start()
            started.append((stop, thread))

    yield start
    for stop, thread in started:
        stop.set()
        thread.join(10)


def next_message(channel, queue, event_type):
    def arrived():
        method, _, body = channel.basic_get(queue, auto_ack=True)
        return json.loads(body) if method else None
    message = wait(arrived, message=f"a {event_type} message on the test queue")
    assert message["type"] == event_type, f"expected {event_type}, got {message['type']}"
    return message


def test_registration_and_an_order_flow_through_the_broker(settings, channel, names, workers, monkeypatch):
    monkeypatch.setattr(passwords, "CURRENT_COST", passwords.ScryptCost(n=2**10, r=8, p=1))
    exchange = settings.service.events_exchange
    declare_topology(channel, router.topology(settings.service))  # as the consumer does; idempotent
    sink = names.new("sink")
    channel.queue_declare(sink, durable=True, arguments={"x-expires": 120_000})  # 4.3 refuses transient ones
    for key in ("user.registered", "credit.#"):
        channel.queue_bind(sink, exchange, routing_key=key)

    app = create_app(settings)
    engine = app.extensions["chassis.dependencies"].engine
    create_schema(engine, inbox_metadata)  # as `python -m users_service consume` does
    workers(engine)
    client = app.test_client()

    user = client.post("/users", json={"email": "ada@example.com", "password": "correct horse battery",
                                       "name": "Ada"}).get_json()
    registered = next_message(channel, sink, "user.registered")
    assert registered["source"] == "users-service"
    assert registered["data"] == {"user_id": user["id"], "email": "ada@example.com", "name": "Ada"}

    order = {"specversion": "1.0", "id": "e" * 32, "type": "order.created", "source": "orders-service",
             "time": "2026-11-24T10:00:00+00:00", "datacontenttype": "application/json",
             "data": {"order_id": "d" * 32, "user_id": user["id"], "total_cents": 2_500, "currency": "EUR",
                      "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price_cents": 2_500}]}}
    channel.confirm_delivery()
    channel.basic_publish(exchange, "order.created", json.dumps(order).encode(),
                          properties=pika.BasicProperties(content_type="application/cloudevents+json",
                                                          delivery_mode=2), mandatory=True)

    def credit_event_in_outbox():
        with engine.connect() as connection:
            return connection.execute(select(outbox.c.event_type).where(
                outbox.c.event_type.like("credit.%"))).scalars().all()
    assert wait(credit_event_in_outbox, message="the consumer's credit.* outbox row") == ["credit.reserved"]
    reserved = next_message(channel, sink, "credit.reserved")
    assert reserved["data"] == {"order_id": "d" * 32, "user_id": user["id"], "amount_cents": 2_500}

    token = client.post("/auth/login", json={"email": "ada@example.com", "password": "correct horse battery"})
    me = client.get("/users/me", headers={"Authorization": f"Bearer {token.get_json()['access_token']}"})
    assert me.get_json()["credit"] == {"limit_cents": 100_000, "reserved_cents": 2_500, "available_cents": 97_500}
    assert client.get("/health/ready").status_code == 200, "PostgreSQL and RabbitMQ are both up"
