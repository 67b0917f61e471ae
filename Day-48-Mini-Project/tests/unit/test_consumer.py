from functools import partial

import pytest
from chassis.consumer import DEAD_LETTERED, DUPLICATE, PROCESSED, RETRY, handle_delivery
from chassis.events import Event, amqp_properties
from chassis.inbox import inbox, inbox_metadata
from chassis.metrics import ServiceMetrics
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import Column, MetaData, String, Table, create_engine, event, func, select

domain = MetaData()
notifications = Table("notifications", domain, Column("event_id", String, primary_key=True))


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'notifications.db'}")
    inbox_metadata.create_all(engine)
    domain.create_all(engine)
    yield engine
    engine.dispose()


def notify(uow, received):
    uow.session.execute(notifications.insert().values(event_id=received.id))


def count(engine, table):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def deliver(channel, tag, the_event, engine, handler=notify, delivery_count=0, **kwargs):
    properties = amqp_properties(the_event, {"x-delivery-count": delivery_count} if delivery_count else {})
    return handle_delivery(channel, type("Deliver", (), {"delivery_tag": tag}), properties,
                           the_event.to_json(), unit_of_work=partial(UnitOfWork, engine, "notifications-service"),
                           handler=handler, **kwargs)


def test_processed_and_acked_only_after_the_commit(engine, fake_channel):
    event.listen(engine, "commit", lambda _conn: fake_channel.journal.append(("commit",)))
    assert deliver(fake_channel, 1, Event("order.approved", "orders-service", {}), engine) == PROCESSED
    assert fake_channel.journal == [("commit",), ("ack", 1)]
    assert count(engine, notifications) == 1 and count(engine, inbox) == 1


def test_a_failing_commit_is_not_acked(engine, fake_channel):
    def fail_commit(_conn):
        raise RuntimeError("disk full")

    event.listen(engine, "commit", fail_commit)
    outcome = deliver(fake_channel, 1, Event("order.approved", "orders-service", {}), engine, max_attempts=3)
    assert outcome == RETRY and ("ack", 1) not in fake_channel.journal
    assert fake_channel.journal == [("nack", 1, True)]


def test_a_duplicate_is_acked_without_running_the_handler_again(engine, fake_channel):
    the_event = Event("order.approved", "orders-service", {})
    calls = []
    assert deliver(fake_channel, 1, the_event, engine, handler=lambda s, e: (calls.append(e), notify(s, e))) == PROCESSED
    assert deliver(fake_channel, 2, the_event, engine, handler=lambda s, e: calls.append(e)) == DUPLICATE
    assert len(calls) == 1 and fake_channel.journal == [("ack", 1), ("ack", 2)]


def test_a_failure_rolls_back_the_handler_and_the_inbox_and_requeues(engine, fake_channel):
    def half_done(uow, received):
        notify(uow, received)
        raise ValueError("credit ledger unavailable")

    metrics = ServiceMetrics()
    the_event = Event("order.created", "orders-service", {})
    assert deliver(fake_channel, 1, the_event, engine, handler=half_done, metrics=metrics) == RETRY
    assert count(engine, notifications) == 0 and count(engine, inbox) == 0
    assert fake_channel.journal == [("nack", 1, True)]
    assert deliver(fake_channel, 2, the_event, engine, metrics=metrics) == PROCESSED, "a later attempt may succeed"
    assert metrics.registry.get_sample_value("events_consumed_total",
                                             {"event_type": "order.created", "outcome": "retry"}) == 1


def test_the_last_allowed_attempt_dead_letters(engine, fake_channel):
    def poison(_uow, _event):
        raise ValueError("cannot handle this event")

    metrics = ServiceMetrics()
    the_event = Event("order.created", "orders-service", {})
    outcome = deliver(fake_channel, 7, the_event, engine, handler=poison, delivery_count=2, max_attempts=3,
                      metrics=metrics)
    assert outcome == DEAD_LETTERED and fake_channel.journal == [("reject", 7, False)]
    assert metrics.registry.get_sample_value("events_dead_lettered_total", {"event_type": "order.created"}) == 1


def test_a_body_that_is_not_an_event_is_dead_lettered_at_once(engine, fake_channel):
    from pika import BasicProperties

    outcome = handle_delivery(fake_channel, type("Deliver", (), {"delivery_tag": 3}), BasicProperties(),
                              b"garbage", unit_of_work=partial(UnitOfWork, engine, "notifications-service"),
                              handler=notify)
    assert outcome == DEAD_LETTERED and fake_channel.journal == [("reject", 3, False)]


def test_a_part_not_built_yet_leaves_the_delivery_unsettled(engine, fake_channel):
    def not_built(_uow, _event):
        raise NotImplementedError("milestone credit-ledger is not built yet: reserve the amount")

    with pytest.raises(NotImplementedError, match="credit-ledger"):
        deliver(fake_channel, 1, Event("order.created", "orders-service", {}), engine, handler=not_built)
    assert fake_channel.journal == [], "neither acked, requeued nor dead-lettered: it waits for the part to be built"
    assert count(engine, inbox) == 0
