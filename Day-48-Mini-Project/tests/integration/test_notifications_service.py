"""notifications-service on the machine's PostgreSQL and RabbitMQ: events in, notifications out."""

import threading
import uuid
from functools import partial

import pika
import pytest
import requests
from chassis.events import Event, amqp_properties
from chassis.inbox import inbox
from chassis.metrics import ServiceMetrics
from chassis.workers import run_consumer
from notifications_service.app import create_app
from notifications_service.event_handlers import router
from notifications_service.settings import Settings
from notifications_service.tables import notifications
from polling import wait_for
from sqlalchemy import func, select

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]

ALICE, BOB = uuid.uuid4().hex, uuid.uuid4().hex
MAX_ATTEMPTS = 3
wait = partial(wait_for, timeout=20.0, interval=0.05)


@pytest.fixture
def settings(postgres_url, amqp_url, names):
    settings = Settings.from_env({"DATABASE_URL": postgres_url, "AMQP_URL": amqp_url,
                                  "EVENTS_EXCHANGE": names.new("events"),
                                  "CONSUMER_QUEUE": names.new("notifications"),
                                  "MAX_DELIVERY_ATTEMPTS": str(MAX_ATTEMPTS)})
    # The dead-letter exchange and queue take their name from the queue: clean them up too.
    names.issued.append(router.topology(settings.service).dead_letter_queue)
    return settings


@pytest.fixture
def app(settings, token_keys):
    app = create_app(settings, verifier=token_keys.verifier())
    yield app
    app.extensions["chassis.dependencies"].engine.dispose()


@pytest.fixture
def channel(settings, topology_channel):
    return topology_channel(settings, router)


@pytest.fixture
def consumer(app, settings):
    """The service's consumer, running in a thread as ``python -m notifications_service consume`` does."""
    stop, metrics = threading.Event(), ServiceMetrics()
    engine = app.extensions["chassis.dependencies"].engine
    thread = threading.Thread(target=run_consumer, daemon=True, name="notifications-consumer", args=(
        engine, settings.service, router.topology(settings.service), router, stop), kwargs={"metrics": metrics})
    thread.start()
    yield metrics
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive(), "the consumer should stop when asked"


def publish(channel, settings, event=None, *, routing_key=None, body=None):
    routing_key = routing_key or event.type
    properties = amqp_properties(event) if event else pika.BasicProperties(delivery_mode=2)
    channel.basic_publish(settings.service.events_exchange, routing_key, body or event.to_json(),
                          properties=properties, mandatory=True)


def count(app, table):
    with app.extensions["chassis.dependencies"].engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def inbox_of(base_url, token):
    response = requests.get(f"{base_url}/notifications", headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_published_events_become_notifications_read_through_the_api(app, settings, channel, consumer,
                                                                    serve, token_keys):
    order = uuid.uuid4().hex
    events = [
        Event("user.registered", "users-service", {"user_id": ALICE, "email": "ada@example.com", "name": "Ada"}),
        Event("order.created", "orders-service", {"order_id": order, "user_id": ALICE, "total_cents": 1250,
                                                  "currency": "EUR", "lines": []}),
        Event("order.approved", "orders-service", {"order_id": order, "user_id": ALICE, "total_cents": 1250}),
        Event("order.cancelled", "orders-service", {"order_id": order, "user_id": ALICE, "total_cents": 1250}),
        Event("credit.released", "users-service", {"order_id": order, "user_id": ALICE, "amount_cents": 1250}),
        Event("order.rejected", "orders-service", {"order_id": uuid.uuid4().hex, "user_id": BOB,
                                                   "reason": "insufficient_credit"}),
    ]
    for event in events:
        publish(channel, settings, event)
    publish(channel, settings, events[2])  # a redelivered copy must not notify twice
    base_url = serve(app)
    alice, bob = token_keys.issue(ALICE), token_keys.issue(BOB)

    items = wait(lambda: (lambda got: got if len(got) >= 5 else None)(inbox_of(base_url, alice)),
                     message="alice's five notifications")
    assert sorted(item["event_id"] for item in items) == sorted(e.id for e in events[:5])
    assert [item["created_at"] for item in items] == sorted((i["created_at"] for i in items), reverse=True)
    short = order[:8] + "…"
    assert {item["message"] for item in items} == {
        "Welcome, Ada! Your account ada@example.com is ready.",
        f"Order {short} placed: total €12.50, awaiting credit approval",
        f"Order {short} approved: total €12.50",
        f"Order {short} cancelled: total €12.50",
        f"Credit of €12.50 released from order {short}",
    }
    [bobs] = wait(lambda: inbox_of(base_url, bob), message="bob's notification")
    assert bobs["event_type"] == "order.rejected" and "not enough credit" in bobs["message"]
    wait(lambda: count(app, inbox) == len(events), message="the duplicate to be consumed")
    assert count(app, notifications) == 6, "the duplicate of order.approved must not notify twice"
    ready = requests.get(f"{base_url}/health/ready", timeout=5)
    assert ready.status_code == 200, ready.text


def test_poison_messages_end_in_the_dead_letter_queue(app, settings, channel, consumer):
    metrics = consumer
    no_user = Event("order.approved", "orders-service", {"order_id": "o-1", "total_cents": 1250})
    publish(channel, settings, no_user)
    publish(channel, settings, routing_key="order.created", body=b"{not json")
    dead_letter_queue = router.topology(settings.service).dead_letter_queue

    dead = []

    def both_dead_lettered():
        method, properties, body = channel.basic_get(dead_letter_queue, auto_ack=True)
        if method is not None:
            dead.append((properties, body))
        return len(dead) == 2

    wait(both_dead_lettered, message="both poison messages in the dead-letter queue")
    bodies = {body for _, body in dead}
    assert b"{not json" in bodies and no_user.to_json() in bodies
    [(properties, _)] = [(p, b) for p, b in dead if b == no_user.to_json()]
    deaths = properties.headers.get("x-death") or []
    assert deaths and deaths[0]["queue"] == settings.service.consumer_queue, properties.headers
    assert count(app, notifications) == 0 and count(app, inbox) == 0
    sample = metrics.registry.get_sample_value
    # The consumer counts just after its reject, so the count may trail the dead-letter queue a little.
    wait(lambda: sample("events_dead_lettered_total", {"event_type": "order.approved"}) == 1
             and sample("events_dead_lettered_total", {"event_type": "invalid"}) == 1, message="the dead-letter counts")
    retries = sample("events_consumed_total", {"event_type": "order.approved", "outcome": "retry"})
    assert retries == MAX_ATTEMPTS - 1, f"expected {MAX_ATTEMPTS - 1} retries before dead-lettering, got {retries}"
