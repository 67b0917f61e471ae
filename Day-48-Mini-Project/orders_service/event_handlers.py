"""The events orders-service consumes: users-service's credit decisions on its orders."""

from __future__ import annotations

import logging

from chassis.config import ServiceConfig
from chassis.consumer import Topology
from chassis.events import Event
from sqlalchemy.orm import Session

from orders_service import order_service
from orders_service.order_states import OrderStatus

log = logging.getLogger(__name__)

BINDING_KEYS = ("credit.reserved", "credit.rejected")
MAX_REASON_LENGTH = 200


class MalformedEvent(ValueError):
    """The event lacks what its type promises; raising it retries, then dead-letters the delivery."""


def topology(config: ServiceConfig) -> Topology:
    """The service's queue (``CONSUMER_QUEUE``, default ``orders-service``) bound to the credit decisions."""
    return Topology.for_service(config.events_exchange, config.consumer_queue, BINDING_KEYS,
                                config.max_delivery_attempts)


def _order_id(event: Event) -> str:
    order_id = event.data.get("order_id")
    if not isinstance(order_id, str) or not order_id:
        raise MalformedEvent(f"{event.type} event {event.id} has no order_id")
    return order_id


def _reason(event: Event) -> str:
    reason = event.data.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        return "credit_rejected"
    return reason.strip()[:MAX_REASON_LENGTH]


def handle(session: Session, event: Event) -> None:
    """Apply one event in the consumer's transaction; types this service does not know are ignored."""
    if event.type == "credit.reserved":
        order_service.record_credit_decision(session, _order_id(event), OrderStatus.APPROVED)
    elif event.type == "credit.rejected":
        order_service.record_credit_decision(session, _order_id(event), OrderStatus.REJECTED, _reason(event))
    else:
        log.info("ignoring event %s of type %s", event.id, event.type)
