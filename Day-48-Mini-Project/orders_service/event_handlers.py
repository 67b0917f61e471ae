"""The events orders-service consumes: users-service's credit decisions on its orders."""

from __future__ import annotations

from chassis.event_router import EventRouter
from chassis.events import Event
from chassis.unit_of_work import UnitOfWork

from orders_service import order_service
from orders_service.order_states import OrderStatus

MAX_REASON_LENGTH = 200

router = EventRouter()


class MalformedEvent(ValueError):
    """The event lacks what its type promises; raising it retries, then dead-letters the delivery."""


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


# --8<-- [start:router]
@router.handles("credit.reserved")
def on_credit_reserved(uow: UnitOfWork, event: Event) -> None:
    order_service.record_credit_decision(uow, _order_id(event), OrderStatus.APPROVED)


@router.handles("credit.rejected")
def on_credit_rejected(uow: UnitOfWork, event: Event) -> None:
    order_service.record_credit_decision(uow, _order_id(event), OrderStatus.REJECTED, _reason(event))
# --8<-- [end:router]
