"""The idempotent consumer and its RabbitMQ topology.

Topology (``declare_topology``): a durable topic exchange events are published to; per consuming
service a durable quorum queue bound to the event types it wants; a dead-letter exchange and
queue the service's failed deliveries end in. The quorum queue counts deliveries
(``x-delivery-count``) and, as a backstop for consumers that die mid-message, dead-letters by
itself after ``x-delivery-limit``.

``handle_delivery`` applies one delivery at most once: the handler's changes and the inbox row
commit in one transaction, the ack comes after the commit, a delivery whose event id is already
in the inbox is acked and dropped, and a failing one is requeued until its ``max_attempts``-th
attempt, then dead-lettered. Create the inbox at start with ``inbox_metadata.create_all(engine)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry import context as otel_context
from opentelemetry import trace
from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from chassis.events import Event, InvalidEvent, trace_context_of
from chassis.metrics import ServiceMetrics

log = logging.getLogger(__name__)

inbox_metadata = MetaData()

inbox = Table(
    "inbox", inbox_metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, default=lambda: datetime.now(UTC)),
)

PROCESSED, DUPLICATE, RETRY, DEAD_LETTERED = "processed", "duplicate", "retry", "dead_lettered"

Handler = Callable[[Session, Event], None]


@dataclass(frozen=True)
class Topology:
    exchange: str  # the topic exchange every service publishes to
    queue: str  # this service's queue
    binding_keys: tuple[str, ...]  # "order.*", "user.registered"
    dead_letter_exchange: str
    dead_letter_queue: str
    max_attempts: int = 5

    @classmethod
    def for_service(cls, exchange: str, service_name: str, binding_keys, max_attempts: int = 5) -> Topology:
        return cls(exchange, service_name, tuple(binding_keys), f"{service_name}.dead-letter",
                   f"{service_name}.dead-letter", max_attempts)


def declare_exchange(channel, exchange: str) -> None:
    """The topic exchange, with an alternate exchange: an event no queue is bound for is kept in
    ``<exchange>.unrouted`` for an operator to see, instead of being dropped or, published with
    ``mandatory``, coming back and holding up the outbox rows behind it."""
    unrouted = f"{exchange}.unrouted"
    channel.exchange_declare(unrouted, exchange_type="fanout", durable=True)
    channel.queue_declare(unrouted, durable=True)
    channel.queue_bind(unrouted, unrouted)
    channel.exchange_declare(exchange, exchange_type="topic", durable=True,
                             arguments={"alternate-exchange": unrouted})


# --8<-- [start:topology]
def declare_topology(channel, topology: Topology) -> None:
    """Declare (idempotently) the exchange, the service's queue with its bindings, and its DLX + DLQ."""
    declare_exchange(channel, topology.exchange)
    channel.exchange_declare(topology.dead_letter_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(topology.dead_letter_queue, durable=True)
    channel.queue_bind(topology.dead_letter_queue, topology.dead_letter_exchange)
    channel.queue_declare(topology.queue, durable=True, arguments={
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-delivery-limit": topology.max_attempts,
    })
    for key in topology.binding_keys:
        channel.queue_bind(topology.queue, topology.exchange, routing_key=key)
# --8<-- [end:topology]


def attempt_number(properties) -> int:
    """1 for a first delivery; the quorum queue counts the earlier ones in ``x-delivery-count``."""
    return int((properties.headers or {}).get("x-delivery-count", 0)) + 1


# --8<-- [start:handle_delivery]
def record_in_inbox(session: Session, event: Event) -> bool:
    """Insert the inbox row; False when the event was already processed (or is being, elsewhere)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(inbox).values(event_id=event.id, event_type=event.type,
                                             processed_at=datetime.now(UTC))
    statement = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(inbox.c.event_id)
    return session.execute(statement).scalar_one_or_none() is not None


def handle_delivery(channel, method, properties, body: bytes, *, engine: Engine, handler: Handler,
                    max_attempts: int = 5, metrics: ServiceMetrics | None = None, tracer=None) -> str:
    """Apply one delivery at most once and settle it; returns the outcome.

    ``handler(session, event)`` makes its changes through ``session``; they commit together with
    the inbox row. Matches pika's ``on_message_callback`` once the keywords are bound.
    """
    try:
        event = Event.from_json(body)
    except InvalidEvent as error:
        log.warning("dead-lettering a delivery that is not an event: %s", error)
        channel.basic_reject(method.delivery_tag, requeue=False)
        _count(metrics, "invalid", DEAD_LETTERED)
        return DEAD_LETTERED
    tracer = tracer or trace.get_tracer(__name__)
    token = otel_context.attach(trace_context_of(properties))
    try:
        with tracer.start_as_current_span(f"{event.type} process", kind=trace.SpanKind.CONSUMER,
                                          attributes={"messaging.message.id": event.id}):
            try:
                with Session(engine) as session, session.begin():
                    fresh = record_in_inbox(session, event)
                    if fresh:
                        handler(session, event)
            except Exception:
                attempt = attempt_number(properties)
                if attempt >= max_attempts:
                    log.exception("event %s (%s) failed on attempt %d of %d: dead-lettered",
                                  event.id, event.type, attempt, max_attempts)
                    channel.basic_reject(method.delivery_tag, requeue=False)
                    _count(metrics, event.type, DEAD_LETTERED)
                    return DEAD_LETTERED
                log.warning("event %s (%s) failed on attempt %d of %d: requeued",
                            event.id, event.type, attempt, max_attempts, exc_info=True)
                channel.basic_nack(method.delivery_tag, requeue=True)
                _count(metrics, event.type, RETRY)
                return RETRY
            # Only now, after the commit: a crash before this line redelivers, and the inbox drops it.
            channel.basic_ack(method.delivery_tag)
            outcome = PROCESSED if fresh else DUPLICATE
            _count(metrics, event.type, outcome)
            return outcome
    finally:
        otel_context.detach(token)
# --8<-- [end:handle_delivery]


def _count(metrics: ServiceMetrics | None, event_type: str, outcome: str) -> None:
    if metrics is None:
        return
    metrics.events_consumed.labels(event_type, outcome).inc()
    if outcome == DEAD_LETTERED:
        metrics.events_dead_lettered.labels(event_type).inc()
