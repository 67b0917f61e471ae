"""What the consumer does with each event: one notification for the event's user."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from chassis.consumer import Topology
from chassis.events import Event

from notifications_service.message_templates import NOTIFIED_EVENT_TYPES
from notifications_service.notification import notification_for
from notifications_service.notification_store import record_notification
from notifications_service.settings import Settings

log = logging.getLogger(__name__)

BINDING_KEYS = NOTIFIED_EVENT_TYPES


def topology(settings: Settings) -> Topology:
    """The queue this service consumes, bound to exactly the event types it notifies of."""
    service = settings.service
    return Topology.for_service(service.events_exchange, service.consumer_queue, BINDING_KEYS,
                                service.max_delivery_attempts)


def handle(session, event: Event) -> None:
    """Record the event's notification; ignore types nobody is notified of.

    Raises ``MalformedEvent`` for an event without a valid ``user_id`` or template field, so the
    chassis retries it and then dead-letters it.
    """
    notification = notification_for(event.id, event.type, event.data, notification_id=uuid.uuid4().hex,
                                     now=datetime.now(UTC))
    if notification is None:
        log.info("ignoring event %s of type %s: no notification for it", event.id, event.type)
        return
    if not record_notification(session, notification):
        log.info("event %s was already notified", event.id)
