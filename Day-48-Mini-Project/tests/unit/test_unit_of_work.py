"""The unit of work: one transaction for a service's changes, the events it publishes and the event it applies."""

import json

import pytest
from chassis.database import create_database_engine, create_schema
from chassis.event_contracts import ContractViolation
from chassis.events import Event
from chassis.inbox import inbox, inbox_metadata
from chassis.outbox import outbox, outbox_metadata
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import Column, MetaData, String, Table, func, insert, select

domain = MetaData()
things = Table("things", domain, Column("id", String, primary_key=True))
APPROVED = {"order_id": "1" * 32, "user_id": "a" * 32, "total_cents": 1250}


@pytest.fixture
def engine(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'service.db'}")
    create_schema(engine, domain, outbox_metadata, inbox_metadata)
    yield engine
    engine.dispose()


def count(engine, table):
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_leaving_the_block_commits_the_change_and_its_event_together(engine):
    with UnitOfWork(engine, "orders-service") as uow:
        uow.session.execute(insert(things).values(id="t1"))
        published = uow.publish("order.approved", APPROVED)
    assert (count(engine, things), count(engine, outbox)) == (1, 1)
    with engine.connect() as connection:
        row = connection.execute(select(outbox)).one()
    envelope = json.loads(row.body)
    assert (row.event_id, row.event_type) == (published.id, "order.approved")
    assert (envelope["source"], envelope["data"]) == ("orders-service", APPROVED), \
        "the event's source is the unit of work's service, its data what was published"


def test_an_exception_rolls_back_the_change_and_the_event(engine):
    with pytest.raises(RuntimeError), UnitOfWork(engine, "orders-service") as uow:
        uow.session.execute(insert(things).values(id="t1"))
        uow.publish("order.approved", APPROVED)
        raise RuntimeError("the service function failed after publishing")
    assert (count(engine, things), count(engine, outbox)) == (0, 0), "an event must never outlive its change"


def test_data_that_breaks_the_contract_is_refused_where_it_is_made(engine):
    with pytest.raises(ContractViolation, match="total_cents"), UnitOfWork(engine, "orders-service") as uow:
        uow.session.execute(insert(things).values(id="t1"))
        uow.publish("order.approved", {**APPROVED, "total_cents": "12.50"})
    assert (count(engine, things), count(engine, outbox)) == (0, 0)


def test_an_inner_block_joins_the_outer_transaction(engine):
    uow = UnitOfWork(engine, "users-service")
    with pytest.raises(RuntimeError), uow:
        with uow:  # a service function called by a handler: no commit of its own
            uow.session.execute(insert(things).values(id="t1"))
        assert count(engine, things) == 0, "the inner block must not commit on its own"
        raise RuntimeError("the consumer's transaction fails after the handler")
    assert count(engine, things) == 0, "the outer rollback takes the inner block's change with it"
    with uow:
        uow.session.execute(insert(things).values(id="t2"))
    assert count(engine, things) == 1, "a unit of work can be used again once the block is left"


def test_a_delivery_is_recorded_once(engine):
    event = Event("order.approved", "orders-service", APPROVED)
    with UnitOfWork(engine, "notifications-service") as uow:
        assert uow.record_delivery(event) is True
    with UnitOfWork(engine, "notifications-service") as uow:
        assert uow.record_delivery(event) is False, "a redelivered event is reported as applied already"
    assert count(engine, inbox) == 1


def test_it_is_used_inside_its_block_only(engine):
    uow = UnitOfWork(engine, "orders-service")
    with pytest.raises(RuntimeError, match="with"):
        uow.publish("order.approved", APPROVED)
    assert uow.session is None
