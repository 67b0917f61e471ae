"""What the consumer does with each event: one shipment per approved order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chassis.database import insert_ignoring_duplicates
from chassis.event_router import EventRouter
from chassis.events import Event
from chassis.unit_of_work import UnitOfWork
from shipping_service.tables import shipments

router = EventRouter()


@router.handles("order.approved")
def record_shipment(uow: UnitOfWork, event: Event) -> None:
    """Record a shipment, ready to pack, for the approved order. A tolerant reader: it takes the two
    ids it needs (a KeyError without them: retried, then dead-lettered) and ignores the rest."""
    order_id, user_id = event.data["order_id"], event.data["user_id"]
    with uow:  # joins the consumer's transaction, which holds the event's inbox row
        uow.session.execute(insert_ignoring_duplicates(uow.session, shipments, "order_id").values(
            id=uuid.uuid4().hex, order_id=order_id, user_id=user_id, created_at=datetime.now(UTC)))
