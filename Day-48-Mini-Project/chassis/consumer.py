"""The idempotent consumer: ``handle_delivery`` applies one delivery at most once.

The handler's changes and the event's inbox row (chassis/inbox.py) commit in one unit of work
(chassis/unit_of_work.py); the ack comes after the commit; a delivery whose event id is already in
the inbox is acked and dropped; a failing one is requeued until its ``max_attempts``-th attempt,
then dead-lettered. The queues it reads are declared by chassis/topology.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry import context as otel_context
from opentelemetry import trace

from chassis.events import Event, InvalidEvent, trace_context_of
from chassis.metrics import ServiceMetrics
from chassis.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

PROCESSED, DUPLICATE, RETRY, DEAD_LETTERED = "processed", "duplicate", "retry", "dead_lettered"

Handler = Callable[[UnitOfWork, Event], None]


def attempt_number(properties) -> int:
    """1 for a first delivery; the quorum queue counts the earlier ones in ``x-delivery-count``."""
    return int((properties.headers or {}).get("x-delivery-count", 0)) + 1


# --8<-- [start:handle_delivery]
def handle_delivery(channel, method, properties, body: bytes, *, unit_of_work: Callable[[], UnitOfWork],
                    handler: Handler, max_attempts: int = 5, metrics: ServiceMetrics | None = None,
                    tracer=None) -> str:
    """Apply one delivery at most once and settle it; returns the outcome.

    ``handler(uow, event)`` makes its changes in the unit of work ``unit_of_work()`` makes; they
    commit together with the inbox row. Matches pika's ``on_message_callback`` once the keywords
    are bound.
    """
    # >>> milestone inbox
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
                with unit_of_work() as uow:
                    fresh = uow.record_delivery(event)
                    if fresh:
                        handler(uow, event)
            except NotImplementedError:
                raise  # a part not built yet: leave the delivery unsettled, for when it is
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
    # <<< milestone inbox
# --8<-- [end:handle_delivery]


def _count(metrics: ServiceMetrics | None, event_type: str, outcome: str) -> None:
    if metrics is None:
        return
    metrics.events_consumed.labels(event_type, outcome).inc()
    if outcome == DEAD_LETTERED:
        metrics.events_dead_lettered.labels(event_type).inc()
