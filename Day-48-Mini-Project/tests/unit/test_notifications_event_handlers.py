"""notifications-service's consumer side: the handler on its own and through the chassis delivery path."""

from functools import partial

import pytest
from chassis.consumer import DEAD_LETTERED, DUPLICATE, PROCESSED, RETRY, handle_delivery
from chassis.database import create_database_engine, create_schema
from chassis.events import Event, amqp_properties
from chassis.inbox import inbox, inbox_metadata
from chassis.metrics import ServiceMetrics
from chassis.unit_of_work import UnitOfWork
from notifications_service.event_handlers import router
from notifications_service.message_templates import MalformedEvent
from notifications_service.settings import Settings
from notifications_service.tables import metadata, notifications
from sqlalchemy import func, select

USER = "0123456789abcdef0123456789abcdef"
MAX_ATTEMPTS = 5


@pytest.fixture
def engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'notifications.db'}")
    create_schema(engine, metadata, inbox_metadata)
    yield engine
    engine.dispose()


def approved(user_id=USER, **data):
    return Event("order.approved", "orders-service",
                 {"order_id": "o-1", "user_id": user_id, "total_cents": 1250, **data})


def rows(engine):
    with engine.connect() as connection:
        return [row._asdict() for row in connection.execute(select(notifications))]


def count(engine, table):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def deliver(channel, tag, body, engine, *, delivery_count=0, event=None, **kwargs):
    headers = {"x-delivery-count": delivery_count} if delivery_count else {}
    properties = amqp_properties(event or Event("x", "y", {}), headers)
    return handle_delivery(channel, type("Deliver", (), {"delivery_tag": tag}), properties, body,
                           unit_of_work=partial(UnitOfWork, engine, "notifications-service"), handler=router,
                           max_attempts=MAX_ATTEMPTS, **kwargs)


def deliver_event(channel, tag, event, engine, **kwargs):
    return deliver(channel, tag, event.to_json(), engine, event=event, **kwargs)


def handle_in_transaction(engine, event):
    with UnitOfWork(engine, "notifications-service") as uow:
        router(uow, event)


def test_an_event_becomes_one_notification_for_its_user(engine):
    event = approved()
    handle_in_transaction(engine, event)
    [row] = rows(engine)
    assert (row["event_id"], row["user_id"], row["event_type"], row["message"]) == (
        event.id, USER, "order.approved", "Order o-1 approved: total €12.50")
    assert len(row["id"]) == 32 and row["created_at"] is not None


def test_each_notified_event_type_is_recorded(engine):
    events = [
        Event("user.registered", "users-service", {"user_id": USER, "email": "a@example.com", "name": "Ada"}),
        Event("order.created", "orders-service", {"order_id": "o-1", "user_id": USER, "total_cents": 5,
                                                  "currency": "EUR", "lines": []}),
        approved(),
        Event("order.rejected", "orders-service", {"order_id": "o-2", "user_id": USER, "reason": "unknown_user"}),
        Event("order.cancelled", "orders-service", {"order_id": "o-1", "user_id": USER, "total_cents": 1250}),
        Event("credit.released", "users-service", {"order_id": "o-1", "user_id": USER, "amount_cents": 1250}),
    ]
    for event in events:
        handle_in_transaction(engine, event)
    assert sorted(r["event_type"] for r in rows(engine)) == sorted(e.type for e in events)


def test_the_same_event_handled_twice_without_the_inbox_is_still_one_notification(engine):
    event = approved()
    handle_in_transaction(engine, event)
    handle_in_transaction(engine, event)  # the unique event_id is the second guard, and it does not fail
    assert len(rows(engine)) == 1


@pytest.mark.parametrize("event_type", ["credit.reserved", "credit.rejected", "order.shipped"])
def test_unknown_event_types_are_ignored_not_failed(engine, fake_channel, event_type):
    event = Event(event_type, "users-service", {"order_id": "o-1"})
    assert deliver_event(fake_channel, 1, event, engine) == PROCESSED
    assert rows(engine) == [] and fake_channel.journal == [("ack", 1)]


def test_redelivery_through_the_chassis_makes_one_notification(engine, fake_channel):
    event = approved()
    assert deliver_event(fake_channel, 1, event, engine) == PROCESSED
    assert deliver_event(fake_channel, 2, event, engine, delivery_count=1) == DUPLICATE
    assert len(rows(engine)) == 1, "a redelivered event must not notify twice"
    assert fake_channel.journal == [("ack", 1), ("ack", 2)], "both deliveries are acked"


def test_an_event_without_a_user_id_raises_a_clear_error(engine):
    event = Event("order.approved", "orders-service", {"order_id": "o-1", "total_cents": 1250})
    with pytest.raises(MalformedEvent, match="no user_id"):
        handle_in_transaction(engine, event)


@pytest.mark.parametrize("data", [
    {"order_id": "o-1", "total_cents": 1250},
    {"order_id": "o-1", "user_id": "not-a-user", "total_cents": 1250},
    {"order_id": "o-1", "user_id": USER, "total_cents": "lots"},
], ids=["no-user-id", "malformed-user-id", "malformed-amount"])
def test_a_malformed_event_is_retried_then_dead_lettered_on_the_last_attempt(engine, fake_channel, data):
    event = Event("order.approved", "orders-service", data)
    metrics = ServiceMetrics()
    outcomes = [deliver_event(fake_channel, n + 1, event, engine, delivery_count=n, metrics=metrics)
                for n in range(MAX_ATTEMPTS)]
    assert outcomes == [RETRY] * (MAX_ATTEMPTS - 1) + [DEAD_LETTERED]
    assert fake_channel.journal == [("nack", n, True) for n in range(1, MAX_ATTEMPTS)] + [
        ("reject", MAX_ATTEMPTS, False)], "requeued until the last attempt, then rejected without requeue"
    assert rows(engine) == [] and count(engine, inbox) == 0, "a failed event leaves nothing behind"
    assert metrics.registry.get_sample_value("events_dead_lettered_total", {"event_type": "order.approved"}) == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "x"}', "\u00ff".encode("latin-1")])
def test_a_body_that_is_not_an_event_is_dead_lettered(engine, fake_channel, body):
    assert deliver(fake_channel, 9, body, engine) == DEAD_LETTERED
    assert fake_channel.journal == [("reject", 9, False)] and rows(engine) == []


def test_the_topology_binds_exactly_the_notified_event_types():
    settings = Settings.from_env({"EVENTS_EXCHANGE": "ex", "MAX_DELIVERY_ATTEMPTS": "3"})
    queue = router.topology(settings.service)
    assert set(queue.binding_keys) == {"user.registered", "order.created", "order.approved", "order.rejected",
                                       "order.cancelled", "credit.released"} == set(router.event_types)
    assert (queue.exchange, queue.queue, queue.dead_letter_queue, queue.max_attempts) == (
        "ex", "notifications-service", "notifications-service.dead-letter", 3)


def test_the_queue_name_can_be_set_for_tests():
    queue = router.topology(Settings.from_env({"CONSUMER_QUEUE": "run-42-notifications"}).service)
    assert (queue.exchange, queue.queue, queue.dead_letter_queue) == (
        "events", "run-42-notifications", "run-42-notifications.dead-letter")
