"""chassis.workers: the relay and the consumer loops keep going when the broker drops them."""

from __future__ import annotations

import threading
import uuid
from functools import partial

import pytest
from chassis.config import ServiceConfig
from chassis.database import create_database_engine, create_schema
from chassis.events import Event
from chassis.inbox import inbox_metadata
from chassis.outbox import add_to_outbox, outbox_metadata
from chassis.topology import Topology
from chassis.workers import Backoff, run_consumer, run_relay
from polling import wait_for
from sqlalchemy import Column, MetaData, String, Table, func, insert, select
from sqlalchemy.orm import Session

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

domain = MetaData()
applied = Table("applied", domain, Column("event_id", String(64), primary_key=True))
wait = partial(wait_for, timeout=30.0, interval=0.05)


def test_backoff_grows_to_its_cap_and_resets():
    backoff = Backoff(base=0.5, cap=4.0, rng=__import__("random").Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(0 <= d <= 4.0 for d in delays) and max(delays[5:]) > 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_relay_and_consumer_survive_the_broker_closing_their_connections(postgres_url, amqp_url, names, broker):
    service = f"svc-{uuid.uuid4().hex[:8]}"
    config = ServiceConfig(service_name=service, database_url=postgres_url, amqp_url=amqp_url,
                           events_exchange=names.new("events"))
    queue = names.new("queue")
    topology = Topology(config.events_exchange, queue, ("thing.*",), names.new("dlx"), names.new("dlq"), 5)
    engine = create_database_engine(postgres_url)
    create_schema(engine, outbox_metadata, inbox_metadata, domain)

    def handler(uow, event):
        uow.session.execute(insert(applied).values(event_id=event.id))

    def applied_count() -> int:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(applied)).scalar_one()

    def publish(count: int) -> None:
        with Session(engine) as session, session.begin():
            for number in range(count):
                add_to_outbox(session, Event("thing.happened", service, {"n": number}))

    stop = threading.Event()
    threads = [threading.Thread(target=run_consumer, args=(engine, config, topology, handler, stop), daemon=True),
               threading.Thread(target=run_relay, args=(engine, config, stop), daemon=True)]
    threads[0].start()
    wait(lambda: len(broker.connections(f"{service} consumer")) == 1)  # queue declared and bound
    threads[1].start()
    try:
        publish(20)
        wait(lambda: applied_count() == 20)
        assert broker.close(service) == 2
        publish(20)
        wait(lambda: applied_count() == 40)
        wait(lambda: len(broker.connections(service)) == 2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        engine.dispose()
    assert not any(thread.is_alive() for thread in threads), "both loops stop when asked"
