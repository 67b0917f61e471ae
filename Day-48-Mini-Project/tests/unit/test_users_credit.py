"""The credit ledger's event handlers, called directly with chassis Events on SQLite: reservations,
rejections, releases, duplicates, poison data; and the consumer topology."""

from functools import partial
from types import SimpleNamespace

import pytest
from chassis.config import ServiceConfig
from chassis.consumer import DUPLICATE, PROCESSED, RETRY, handle_delivery
from chassis.database import create_database_engine, create_schema
from chassis.events import Event
from chassis.inbox import inbox_metadata
from chassis.outbox import outbox, outbox_metadata
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import func, insert, select
from users_service.credit_ledger import InvalidEventData
from users_service.event_handlers import router
from users_service.tables import credit_reservations, metadata, users

ADA, BOB = "a" * 32, "b" * 32
O1, O2 = "1" * 32, "2" * 32  # order ids, as orders-service makes them


@pytest.fixture
def engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'users.db'}")
    create_schema(engine, metadata, outbox_metadata, inbox_metadata)
    with engine.begin() as connection:
        for user_id, limit in ((ADA, 10_000), (BOB, 500)):
            connection.execute(insert(users).values(
                id=user_id, email=f"{user_id[:3]}@example.com", name="x", password_hash="scrypt$", is_admin=False,
                credit_limit_cents=limit, reserved_cents=0, created_at=func.current_timestamp()))
    yield engine
    engine.dispose()


def created(order_id=O1, user_id=ADA, total_cents=2_500, **extra):
    return Event("order.created", "orders-service", {"order_id": order_id, "user_id": user_id,
                                                     "total_cents": total_cents, "currency": "EUR",
                                                     "lines": [{"sku": "SKU-1", "quantity": 1,
                                                                "unit_price_cents": total_cents}], **extra})


def cancelled(order_id=O1, user_id=ADA, total_cents=2_500):
    return Event("order.cancelled", "orders-service", {"order_id": order_id, "user_id": user_id,
                                                       "total_cents": total_cents})


def units(engine):
    return partial(UnitOfWork, engine, "users-service")


def apply(engine, event):
    with units(engine)() as uow:  # as the consumer does, with the inbox row
        router(uow, event)


def reserved_cents(engine, user_id=ADA):
    with engine.connect() as connection:
        return connection.execute(select(users.c.reserved_cents).where(users.c.id == user_id)).scalar_one()


def published(engine):
    with engine.connect() as connection:
        rows = connection.execute(select(outbox.c.body).order_by(outbox.c.id)).scalars().all()
    return [Event.from_json(body) for body in rows]


def reservation(engine, order_id=O1):
    with engine.connect() as connection:
        return connection.execute(select(credit_reservations).where(
            credit_reservations.c.order_id == order_id)).one_or_none()


def test_an_order_within_the_limit_reserves_credit_and_says_so(engine):
    apply(engine, created())
    assert reserved_cents(engine) == 2_500
    [event] = published(engine)
    assert (event.type, event.source) == ("credit.reserved", "users-service")
    assert event.data == {"order_id": O1, "user_id": ADA, "amount_cents": 2_500}
    row = reservation(engine)
    assert (row.user_id, row.amount_cents, row.status) == (ADA, 2_500, "RESERVED")


def test_an_order_up_to_exactly_the_available_credit_is_reserved(engine):
    apply(engine, created(O1, total_cents=6_000))
    apply(engine, created(O2, total_cents=4_000))
    assert reserved_cents(engine) == 10_000
    assert [e.type for e in published(engine)] == ["credit.reserved", "credit.reserved"]


def test_an_order_over_the_available_credit_is_rejected_and_reserves_nothing(engine):
    apply(engine, created(O1, total_cents=9_000))
    apply(engine, created(O2, total_cents=1_001))
    assert reserved_cents(engine) == 9_000, "a rejected order must not touch the balance"
    rejected = published(engine)[1]
    assert rejected.type == "credit.rejected"
    assert rejected.data == {"order_id": O2, "user_id": ADA, "amount_cents": 1_001, "reason": "insufficient_credit"}
    assert reservation(engine, O2).status == "REJECTED"


def test_an_order_of_an_unknown_user_is_rejected_as_such(engine):
    apply(engine, created(user_id="f" * 32))
    [event] = published(engine)
    assert event.type == "credit.rejected" and event.data["reason"] == "unknown_user"


def test_the_same_order_twice_reserves_once_and_announces_once(engine):
    apply(engine, created())
    apply(engine, created())  # a second event (new id) for the same order: the reservation decides
    assert reserved_cents(engine) == 2_500
    assert [e.type for e in published(engine)] == ["credit.reserved"]


def test_a_rejected_order_seen_again_is_not_announced_again(engine):
    apply(engine, created(user_id=BOB, total_cents=501))
    apply(engine, created(user_id=BOB, total_cents=501))
    assert [e.type for e in published(engine)] == ["credit.rejected"]


def test_a_redelivered_event_is_dropped_by_the_inbox(engine, fake_channel, make_delivery):
    event = created()
    properties = SimpleNamespace(headers={})
    outcomes = [handle_delivery(fake_channel, make_delivery(tag), properties, event.to_json(), unit_of_work=units(engine),
                                handler=router) for tag in (1, 2)]
    assert outcomes == [PROCESSED, DUPLICATE]
    assert fake_channel.journal == [("ack", 1), ("ack", 2)]
    assert reserved_cents(engine) == 2_500
    assert len(published(engine)) == 1, "one credit.* outbox row for one order"


def test_cancelling_a_reserved_order_releases_its_credit_once(engine):
    apply(engine, created())
    apply(engine, cancelled())
    assert reserved_cents(engine) == 0
    assert reservation(engine).status == "RELEASED"
    released = published(engine)[-1]
    assert released.type == "credit.released"
    assert released.data == {"order_id": O1, "user_id": ADA, "amount_cents": 2_500}
    apply(engine, cancelled())
    assert reserved_cents(engine) == 0 and len(published(engine)) == 2, "a second cancel releases nothing"


def test_cancelling_an_order_without_a_live_reservation_does_nothing(engine):
    apply(engine, cancelled("never-seen"))
    apply(engine, created(O2, user_id=BOB, total_cents=9_999))  # rejected
    apply(engine, cancelled(O2, user_id=BOB, total_cents=9_999))
    assert reserved_cents(engine, BOB) == 0
    assert [e.type for e in published(engine)] == ["credit.rejected"]


def test_a_released_credit_can_be_reserved_again(engine):
    apply(engine, created(O1, total_cents=10_000))
    apply(engine, cancelled(O1, total_cents=10_000))
    apply(engine, created(O2, total_cents=10_000))
    assert reserved_cents(engine) == 10_000
    assert [e.type for e in published(engine)] == ["credit.reserved", "credit.released", "credit.reserved"]


@pytest.mark.parametrize("event", [
    Event("order.created", "orders-service", {"order_id": O1, "user_id": ADA}),
    created(total_cents=-1),
    created(total_cents="2500"),
    Event("order.cancelled", "orders-service", {"user_id": ADA, "total_cents": 1}),
])
def test_events_with_bad_data_raise_and_change_nothing(engine, event):
    with pytest.raises(InvalidEventData):
        apply(engine, event)
    assert reserved_cents(engine) == 0 and published(engine) == []


def test_a_poison_event_is_retried_then_dead_lettered(engine, fake_channel, make_delivery):
    body = created(total_cents=-5).to_json()
    first = handle_delivery(fake_channel, make_delivery(1), SimpleNamespace(headers={}), body, unit_of_work=units(engine),
                            handler=router, max_attempts=2)
    last = handle_delivery(fake_channel, make_delivery(2), SimpleNamespace(headers={"x-delivery-count": 1}), body,
                           unit_of_work=units(engine), handler=router, max_attempts=2)
    assert (first, last) == (RETRY, "dead_lettered")
    assert fake_channel.journal == [("nack", 1, True), ("reject", 2, False)]


def test_events_of_other_types_are_ignored(engine):
    apply(engine, Event("user.registered", "users-service", {"user_id": ADA}))
    apply(engine, Event("order.approved", "orders-service", {"nonsense": True}))
    assert published(engine) == [] and reserved_cents(engine) == 0


def test_the_consumer_queue_is_bound_to_the_order_events():
    config = ServiceConfig.from_env("users-service", {"EVENTS_EXCHANGE": "test-events", "MAX_DELIVERY_ATTEMPTS": "3"})
    declared = router.topology(config)
    assert (declared.exchange, declared.queue, declared.dead_letter_queue, declared.max_attempts) == \
        ("test-events", "users-service", "users-service.dead-letter", 3)
    assert set(declared.binding_keys) == {"order.created", "order.cancelled"}
