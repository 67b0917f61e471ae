import json
import sqlite3

import pytest
from chassis.database import create_database_engine
from chassis.events import Event
from chassis.metrics import ServiceMetrics
from chassis.outbox import add_to_outbox, outbox, outbox_metadata, relay_once, unsent_count
from sqlalchemy import Column, MetaData, String, Table, create_engine, select
from sqlalchemy.orm import Session

domain = MetaData()
orders = Table("orders", domain, Column("id", String, primary_key=True))


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    outbox_metadata.create_all(engine)
    domain.create_all(engine)
    yield engine
    engine.dispose()


def place_order(engine, order_id, fail=False):
    with Session(engine) as session, session.begin():
        session.execute(orders.insert().values(id=order_id))
        add_to_outbox(session, Event("order.created", "orders-service", {"order_id": order_id}))
        if fail:
            raise RuntimeError("the transaction fails after both writes")


def test_the_event_commits_with_the_state_change(engine):
    place_order(engine, "o-1")
    with engine.connect() as connection:
        assert connection.execute(select(orders.c.id)).scalars().all() == ["o-1"]
        [row] = connection.execute(select(outbox)).all()
    assert row.event_type == "order.created" and row.sent_at is None
    assert json.loads(row.body)["data"] == {"order_id": "o-1"}


def test_the_event_rolls_back_with_the_state_change(engine):
    with pytest.raises(RuntimeError):
        place_order(engine, "o-1", fail=True)
    assert unsent_count(engine) == 0


def test_relay_publishes_in_order_then_marks_sent(engine, fake_channel):
    for n in range(3):
        place_order(engine, f"o-{n}")
    metrics = ServiceMetrics()
    assert relay_once(engine, fake_channel, "events", metrics=metrics) == 3
    bodies = [json.loads(body) for _, _, body, _ in fake_channel.published]
    assert [b["data"]["order_id"] for b in bodies] == ["o-0", "o-1", "o-2"]
    assert {(exchange, key) for exchange, key, _, _ in fake_channel.published} == {("events", "order.created")}
    assert fake_channel.published[0][3].message_id == bodies[0]["id"]
    assert unsent_count(engine) == 0
    assert relay_once(engine, fake_channel, "events") == 0, "a sent row must not be published again"
    assert metrics.registry.get_sample_value("events_published_total", {"event_type": "order.created"}) == 3
    assert metrics.registry.get_sample_value("outbox_backlog") == 0


def test_relay_respects_the_batch_size(engine, fake_channel):
    for n in range(5):
        place_order(engine, f"o-{n}")
    assert relay_once(engine, fake_channel, "events", batch=2) == 2
    assert unsent_count(engine) == 3


def test_a_refused_publish_keeps_that_row_and_the_rest_for_later(engine, fake_channel):
    for n in range(3):
        place_order(engine, f"o-{n}")
    fake_channel.fail_on_publish = 2
    with pytest.raises(RuntimeError, match="refused"):
        relay_once(engine, fake_channel, "events")
    assert unsent_count(engine) == 2, "the row confirmed before the failure keeps its mark"
    fake_channel.fail_on_publish = None
    assert relay_once(engine, fake_channel, "events") == 2


def test_a_relay_dying_before_its_commit_publishes_again(engine, fake_channel):
    place_order(engine, "o-1")

    class Killed(BaseException):
        pass

    class DyingChannel(type(fake_channel)):
        def basic_publish(self, *args, **kwargs):
            super().basic_publish(*args, **kwargs)
            raise Killed  # the process dies after the broker confirmed, before the mark commits

    dying = DyingChannel()
    with pytest.raises(Killed):
        relay_once(engine, dying, "events")
    assert relay_once(engine, fake_channel, "events") == 1
    assert dying.published[0][3].message_id == fake_channel.published[0][3].message_id


def test_the_relay_leaves_the_database_free_to_write_while_it_waits_for_the_broker(tmp_path, fake_channel):
    """Under `make run` the web process, the consumer and the relay share one SQLite file with one
    writer at a time: a relay that holds the write lock from its first publish to its commit makes
    every order wait for the broker's confirms."""
    path = tmp_path / "orders.db"
    engine = create_database_engine(f"sqlite:///{path}")  # as the services make it: WAL, busy timeout
    outbox_metadata.create_all(engine)
    domain.create_all(engine)
    for n in range(3):
        place_order(engine, f"o-{n}")
    refused = []

    class WritingWhileConfirming(type(fake_channel)):
        def basic_publish(self, *args, **kwargs):
            super().basic_publish(*args, **kwargs)
            other = sqlite3.connect(path, timeout=0)  # another process's write, which must not wait
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("INSERT INTO orders (id) VALUES (?)", (f"web-{len(self.published)}",))
                other.commit()
            except sqlite3.OperationalError as error:
                refused.append(f"a write during publish {len(self.published)} was refused: {error}")
            finally:
                other.close()

    try:
        assert relay_once(engine, WritingWhileConfirming(), "events") == 3
        assert not refused, ("the relay held SQLite's write lock while it published: read the rows, publish "
                             "them, then mark the confirmed ones in one short write at the end; " + "; ".join(refused))
        assert unsent_count(engine) == 0, "every confirmed row is marked sent"
    finally:
        engine.dispose()
