"""What the consumer does with each event: one notification for the event's user."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from chassis.event_router import EventRouter
from chassis.events import Event
from chassis.unit_of_work import UnitOfWork

from notifications_service.message_templates import NOTIFIED_EVENT_TYPES
from notifications_service.notification import notification_for
from notifications_service.notification_service import record_notification

log = logging.getLogger(__name__)

router = EventRouter()


@router.handles(*NOTIFIED_EVENT_TYPES)
def notify(uow: UnitOfWork, event: Event) -> None:
    """Record the event's notification.

    Raises ``MalformedEvent`` for an event without a valid ``user_id`` or template field, so the
    chassis retries it and then dead-letters it.
    """
    notification = notification_for(event.id, event.type, event.data, notification_id=uuid.uuid4().hex,
                                     now=datetime.now(UTC))
    if notification is None:  # a type nobody is notified of: the router never sends one
        return
    if not record_notification(uow, notification):
        log.info("event %s was already notified", event.id)
