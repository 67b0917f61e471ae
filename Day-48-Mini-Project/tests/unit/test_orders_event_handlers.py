"""orders-service's side of the saga: credit decisions applied to orders, and their cancellation (the
compensation), on a SQLite file."""

import json
from functools import partial

import pytest
from chassis.consumer import DEAD_LETTERED, DUPLICATE, PROCESSED, RETRY, handle_delivery
from chassis.database import create_database_engine
from chassis.events import Event, amqp_properties
from chassis.outbox import outbox
from chassis.unit_of_work import UnitOfWork
from orders_service import order_service
from orders_service.event_handlers import MalformedEvent, router
from orders_service.order_request import RequestedLine
from orders_service.order_service import OrderNotFound
from orders_service.order_states import InvalidTransition
from orders_service.service import SERVICE
from orders_service.settings import Settings
from sqlalchemy import select

ALICE = "a" * 32


@pytest.fixture
def engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    SERVICE.prepare_database(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def order(engine):
    return order_service.place_order(UnitOfWork(engine, SERVICE.name), ALICE, (RequestedLine("monitor", 2),)).body


def credit(event_type, order_id, **data):
    return Event(event_type, "users-service", {"order_id": order_id, "user_id": ALICE, "amount_cents": 37998,
                                               **data})


def apply(engine, event):
    with UnitOfWork(engine, SERVICE.name) as uow:  # as the consumer does, with the inbox row
        router(uow, event)


def status_of(engine, order_id):
    shown = order_service.get_order(UnitOfWork(engine, SERVICE.name), ALICE, order_id)
    return shown["status"], shown["reason"]


def announced(engine, event_type):
    with engine.connect() as connection:
        bodies = connection.execute(select(outbox.c.body).where(outbox.c.event_type == event_type)).scalars()
        return [json.loads(body)["data"] for body in bodies]


def test_credit_reserved_approves_the_order_and_announces_it(engine, order):
    apply(engine, credit("credit.reserved", order["id"]))
    assert status_of(engine, order["id"]) == ("APPROVED", None)
    assert announced(engine, "order.approved") == [
        {"order_id": order["id"], "user_id": ALICE, "total_cents": 37998}]


def test_credit_rejected_rejects_the_order_with_the_reason(engine, order):
    apply(engine, credit("credit.rejected", order["id"], reason="insufficient_credit"))
    assert status_of(engine, order["id"]) == ("REJECTED", "insufficient_credit")
    assert announced(engine, "order.rejected") == [
        {"order_id": order["id"], "user_id": ALICE, "reason": "insufficient_credit"}]


@pytest.mark.parametrize(("data", "reason"), [({}, "credit_rejected"), ({"reason": 7}, "credit_rejected"),
                                              ({"reason": "  "}, "credit_rejected"),
                                              ({"reason": "x" * 500}, "x" * 200)])
def test_a_missing_or_odd_reason_still_rejects(engine, order, data, reason):
    apply(engine, credit("credit.rejected", order["id"], **data))
    assert status_of(engine, order["id"]) == ("REJECTED", reason)


def test_a_duplicate_credit_reserved_approves_once(engine, order):
    # Two deliveries with different event ids: the inbox cannot drop the second, the state machine does.
    apply(engine, credit("credit.reserved", order["id"]))
    apply(engine, credit("credit.reserved", order["id"]))
    assert status_of(engine, order["id"])[0] == "APPROVED"
    assert len(announced(engine, "order.approved")) == 1, "a duplicate decision must not announce twice"


@pytest.mark.parametrize(("first", "late"), [("credit.reserved", "credit.rejected"),
                                             ("credit.rejected", "credit.reserved")])
def test_a_late_contrary_decision_changes_nothing(engine, order, first, late):
    apply(engine, credit(first, order["id"], reason="insufficient_credit"))
    before = status_of(engine, order["id"])
    apply(engine, credit(late, order["id"], reason="unknown_user"))
    assert status_of(engine, order["id"]) == before
    assert len(announced(engine, "order.approved")) + len(announced(engine, "order.rejected")) == 1


def test_a_decision_on_a_cancelled_order_changes_nothing(engine, order):
    apply(engine, credit("credit.reserved", order["id"]))
    order_service.cancel_order(UnitOfWork(engine, SERVICE.name), ALICE, order["id"])
    apply(engine, credit("credit.reserved", order["id"]))
    assert status_of(engine, order["id"])[0] == "CANCELLED"
    assert len(announced(engine, "order.approved")) == 1


# --- cancelling: the compensation, called as the route calls it -------------------------------

def cancel(engine, order_id, user_id=ALICE):
    return order_service.cancel_order(UnitOfWork(engine, SERVICE.name), user_id, order_id)


def test_an_approved_order_is_cancelled_and_the_release_announced(engine, order):
    apply(engine, credit("credit.reserved", order["id"]))
    shown = cancel(engine, order["id"])
    assert (shown["id"], shown["status"]) == (order["id"], "CANCELLED"), "cancel_order returns the order as it is now"
    assert status_of(engine, order["id"])[0] == "CANCELLED"
    assert announced(engine, "order.cancelled") == [
        {"order_id": order["id"], "user_id": ALICE, "total_cents": 37998}], \
        "order.cancelled, with the total, is what makes users-service release the credit"


@pytest.mark.parametrize("decision", [None, "credit.rejected", "cancel"])
def test_only_an_approved_order_can_be_cancelled(engine, order, decision):
    if decision == "cancel":
        apply(engine, credit("credit.reserved", order["id"]))
        cancel(engine, order["id"])
    elif decision:
        apply(engine, credit(decision, order["id"], reason="insufficient_credit"))
    before = status_of(engine, order["id"])
    with pytest.raises(InvalidTransition) as raised:
        cancel(engine, order["id"])
    assert raised.value.current == before[0], "the error names the status the order is in"
    assert status_of(engine, order["id"]) == before
    assert len(announced(engine, "order.cancelled")) == (1 if decision == "cancel" else 0), \
        "a refused cancel announces nothing: no credit may be released twice, or for an order never approved"


@pytest.mark.parametrize("who, order_id", [("b" * 32, None), (ALICE, "f" * 32)])
def test_someone_elses_or_a_missing_order_is_not_found(engine, order, who, order_id):
    apply(engine, credit("credit.reserved", order["id"]))
    with pytest.raises(OrderNotFound):
        cancel(engine, order_id or order["id"], user_id=who)
    assert status_of(engine, order["id"])[0] == "APPROVED"
    assert announced(engine, "order.cancelled") == []


def test_an_unknown_order_raises_so_the_delivery_is_retried(engine):
    with pytest.raises(OrderNotFound):
        apply(engine, credit("credit.reserved", "f" * 32))
    assert announced(engine, "order.approved") == []


@pytest.mark.parametrize("order_id", [None, 42, "", ["x"]])
def test_an_event_without_an_order_id_raises(engine, order_id):
    with pytest.raises(MalformedEvent):
        apply(engine, Event("credit.reserved", "users-service", {"order_id": order_id}))


def test_other_event_types_are_ignored(engine, order):
    apply(engine, Event("user.registered", "users-service", {"user_id": ALICE}))
    apply(engine, Event("order.created", "orders-service", {"order_id": order["id"]}))
    assert status_of(engine, order["id"])[0] == "PENDING"


def deliver(channel, event, engine, delivery_count=0, tag=1):
    properties = amqp_properties(event, {"x-delivery-count": delivery_count} if delivery_count else {})
    return handle_delivery(channel, type("Deliver", (), {"delivery_tag": tag}), properties, event.to_json(),
                           unit_of_work=partial(UnitOfWork, engine, SERVICE.name), handler=router,
                           max_attempts=3)


def test_through_the_chassis_consumer_a_redelivery_is_dropped_and_acked(engine, order, fake_channel):
    event = credit("credit.reserved", order["id"])
    assert deliver(fake_channel, event, engine, tag=1) == PROCESSED
    assert deliver(fake_channel, event, engine, tag=2) == DUPLICATE
    assert fake_channel.journal == [("ack", 1), ("ack", 2)]
    assert len(announced(engine, "order.approved")) == 1


def test_through_the_chassis_consumer_an_unknown_order_is_retried_then_dead_lettered(engine, fake_channel):
    event = credit("credit.reserved", "f" * 32)
    assert deliver(fake_channel, event, engine, tag=1) == RETRY
    assert deliver(fake_channel, event, engine, delivery_count=2, tag=2) == DEAD_LETTERED
    assert fake_channel.journal == [("nack", 1, True), ("reject", 2, False)]


def test_the_topology_binds_the_credit_decisions_to_the_configured_queue():
    settings = Settings.from_env({"EVENTS_EXCHANGE": "test-events", "CONSUMER_QUEUE": "orders-test",
                                  "MAX_DELIVERY_ATTEMPTS": "7"})
    shape = router.topology(settings.service)
    assert (shape.exchange, shape.queue, shape.binding_keys) == ("test-events", "orders-test", router.event_types)
    assert set(router.event_types) == {"credit.reserved", "credit.rejected"}
    assert shape.dead_letter_queue == "orders-test.dead-letter" and shape.max_attempts == 7
    assert router.topology(Settings.from_env({}).service).queue == "orders-service"
