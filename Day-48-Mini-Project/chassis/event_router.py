"""Which handler applies each event type a service consumes, declared where the handler is written.

    router = EventRouter()

    @router.handles("credit.reserved")
    def on_credit_reserved(uow, event): ...

The service's queue is bound to exactly ``router.event_types`` (``router.topology(config)``), so a
binding without a handler, or a handler for events that never arrive, cannot be written. The
router is the consumer's handler (``router(uow, event)``): it calls the handler inside the unit of
work the consumer opened with the event's inbox row.

Handlers read their events as tolerant readers: each takes the fields it needs and refuses an
event without them (retried, then dead-lettered), and ignores the rest, so a producer may add a
field (contracts/events/, declared first as optional) without a consumer noticing. The strict
check of a contract is the producer's (``UnitOfWork.publish``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chassis.config import ServiceConfig
from chassis.consumer import Handler
from chassis.events import Event
from chassis.topology import Topology
from chassis.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class EventRouter:
    def __init__(self):
        self._handlers: dict[str, Handler] = {}

    def handles(self, *event_types: str) -> Callable[[Handler], Handler]:
        """Register the decorated function for these event types (exact types: no wildcards)."""
        def register(handler: Handler) -> Handler:
            for event_type in event_types:
                if not event_type or "*" in event_type or "#" in event_type:
                    raise ValueError(f"an event type, not a pattern: {event_type!r}")
                if event_type in self._handlers:
                    raise ValueError(f"{event_type} already has a handler: {self._handlers[event_type].__name__}")
                self._handlers[event_type] = handler
            return handler
        return register

    @property
    def event_types(self) -> tuple[str, ...]:
        return tuple(sorted(self._handlers))

    def topology(self, config: ServiceConfig) -> Topology:
        """The service's queue (``CONSUMER_QUEUE``) bound to the event types it handles."""
        return Topology.for_service(config.events_exchange, config.consumer_queue, self.event_types,
                                    config.max_delivery_attempts)

    def __call__(self, uow: UnitOfWork, event: Event) -> None:
        """Apply ``event``; a type nobody here handles (a binding added by hand) is logged and dropped."""
        handler = self._handlers.get(event.type)
        if handler is None:
            log.info("ignoring event %s of type %s: no handler for it", event.id, event.type)
            return
        handler(uow, event)
