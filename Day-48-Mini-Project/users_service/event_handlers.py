"""The events users-service consumes, dispatched by type; the chassis consumer calls ``handle``."""

from __future__ import annotations

import logging

from chassis.config import ServiceConfig
from chassis.consumer import Topology
from chassis.events import Event

from users_service.credit_ledger import order_amount
from users_service.credit_service import release_credit, reserve_credit

log = logging.getLogger(__name__)

BINDING_KEYS = ("order.created", "order.cancelled")


def topology(config: ServiceConfig) -> Topology:
    """Queue ``CONSUMER_QUEUE`` (default ``users-service``) bound to the order events the ledger acts on."""
    return Topology.for_service(config.events_exchange, config.consumer_queue, BINDING_KEYS,
                                config.max_delivery_attempts)


def on_order_created(session, event: Event) -> None:
    outcome = reserve_credit(session, order_amount(event.type, event.data))
    log.info("order %s: credit %s", event.data["order_id"], outcome)


def on_order_cancelled(session, event: Event) -> None:
    outcome = release_credit(session, order_amount(event.type, event.data).order_id)
    log.info("order %s cancelled: credit %s", event.data["order_id"], outcome)


HANDLERS = {"order.created": on_order_created, "order.cancelled": on_order_cancelled}


def handle(session, event: Event) -> None:
    """Apply ``event`` through ``session``; a type this service does not consume is ignored, not failed."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        log.debug("ignoring %s event %s", event.type, event.id)
        return
    handler(session, event)
