"""The transactional outbox: an event is written in the same transaction as the state change it
announces, and a relay publishes it afterwards with publisher confirms.

Create the table at start with ``outbox_metadata.create_all(engine)``. The channel given to
``relay_once`` must be in confirm mode (``channel.confirm_delivery()``), so that ``basic_publish``
returns only once the broker has the message and raises when it is refused or unroutable.

Delivery is at least once: a relay that dies after a publish and before its commit publishes the
row again on its next run, with the same event id, for the consumer's inbox to drop.
"""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry import propagate, trace
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from chassis.events import Event, amqp_properties, trace_headers
from chassis.metrics import ServiceMetrics

outbox_metadata = MetaData()

outbox = Table(
    "outbox", outbox_metadata,
    # SQLite autoincrements only an INTEGER primary key.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("headers", JSON, nullable=False),  # the trace context of the transaction that wrote it
    Column("created_at", DateTime(timezone=True), nullable=False, default=lambda: datetime.now(UTC)),
    Column("sent_at", DateTime(timezone=True)),
)
# The relay looks for unsent rows in id order: a partial index keeps that cheap as the table grows.
Index("outbox_unsent", outbox.c.id, postgresql_where=outbox.c.sent_at.is_(None),
      sqlite_where=outbox.c.sent_at.is_(None))


# --8<-- [start:add_to_outbox]
def add_to_outbox(session, event: Event) -> None:
    """Queue ``event`` in the caller's transaction (a SQLAlchemy Session or Connection): it is
    published only if that transaction commits."""
    session.execute(insert(outbox).values(event_id=event.id, event_type=event.type,
                                          body=event.to_json().decode(), headers=trace_headers()))
# --8<-- [end:add_to_outbox]


def unsent_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).where(outbox.c.sent_at.is_(None))).scalar_one()


def _publish(channel, exchange: str, row, event: Event, tracer: trace.Tracer) -> None:
    # A PRODUCER span, child of the request that wrote the row: the consumer's span continues it.
    with tracer.start_as_current_span(f"{row.event_type} publish", context=propagate.extract(row.headers),
                                      kind=trace.SpanKind.PRODUCER,
                                      attributes={"messaging.system": "rabbitmq",
                                                  "messaging.destination.name": exchange,
                                                  "messaging.message.id": event.id}):
        channel.basic_publish(exchange, row.event_type, row.body.encode(),
                              properties=amqp_properties(event, trace_headers()), mandatory=True)


# --8<-- [start:relay]
def relay_once(engine: Engine, channel, exchange: str, batch: int = 100, *,
               metrics: ServiceMetrics | None = None, tracer: trace.Tracer | None = None) -> int:
    """Publish up to ``batch`` unsent rows, oldest first, then mark the confirmed ones sent, all in
    one statement.

    Returns how many were published. If a publish fails, the rows confirmed before it are marked
    and the error propagates; that row and the rest wait for the next run.
    """
    # >>> milestone relay
    confirmed: list[int] = []  # outbox ids the broker has taken, in publish order
    failure = None
    tracer = tracer or trace.get_tracer(__name__)
    with engine.begin() as connection:
        query = select(outbox).where(outbox.c.sent_at.is_(None)).order_by(outbox.c.id).limit(batch)
        if connection.dialect.name == "postgresql":
            # Locked until the commit: a second relay skips these rows instead of sending them too.
            query = query.with_for_update(skip_locked=True)
        rows = connection.execute(query).all()
        for row in rows:
            try:
                _publish(channel, exchange, row, Event.from_json(row.body), tracer)
            except Exception as error:
                failure = error
                break
            confirmed.append(row.id)
            if metrics:
                metrics.events_published.labels(row.event_type).inc()
        if confirmed:
            # One write for the batch, after the publishes: on SQLite the file's write lock is taken
            # here, for one statement, instead of from the first publish to the commit.
            connection.execute(update(outbox).where(outbox.c.id.in_(confirmed)).values(sent_at=datetime.now(UTC)))
    if metrics:
        # A run that found nothing has seen an empty outbox: no need to count it.
        metrics.outbox_backlog.set(unsent_count(engine) if rows else 0)
    if failure is not None:
        raise failure
    return len(confirmed)
    # <<< milestone relay
# --8<-- [end:relay]

