"""The events users-service consumes: orders placed and cancelled, which the credit ledger acts on."""

from __future__ import annotations

import logging

from chassis.event_router import EventRouter
from chassis.events import Event
from chassis.unit_of_work import UnitOfWork

from users_service.credit_ledger import order_amount
from users_service.credit_service import release_credit, reserve_credit

log = logging.getLogger(__name__)

router = EventRouter()


@router.handles("order.created")
def on_order_created(uow: UnitOfWork, event: Event) -> None:
    outcome = reserve_credit(uow, order_amount(event.type, event.data))
    log.info("order %s: credit %s", event.data["order_id"], outcome)


@router.handles("order.cancelled")
def on_order_cancelled(uow: UnitOfWork, event: Event) -> None:
    outcome = release_credit(uow, order_amount(event.type, event.data).order_id)
    log.info("order %s cancelled: credit %s", event.data["order_id"], outcome)
