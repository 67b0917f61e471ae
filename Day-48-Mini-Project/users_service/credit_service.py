"""Credit reservations for orders. Plain functions over the consumer's unit of work (one transaction
with its inbox row); every outcome leaves through the outbox in that same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from chassis.database import insert_ignoring_duplicates
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import select, update

from users_service.credit_ledger import (
    INSUFFICIENT_CREDIT,
    REJECTED,
    RELEASED,
    RESERVED,
    UNKNOWN_USER,
    OrderAmount,
    rejected_data,
    reserved_data,
)
from users_service.tables import credit_reservations, users

# What the functions did, for logs and tests.
RESERVED_NOW, REJECTED_NOW, RELEASED_NOW, ALREADY_HANDLED, NOTHING_TO_RELEASE = (
    "reserved", "rejected", "released", "already_handled", "nothing_to_release")


def _claim_order(session, order: OrderAmount, now: datetime) -> bool:
    """Insert the order's reservation row; False when the order has one already (a duplicate event)."""
    statement = insert_ignoring_duplicates(session, credit_reservations, "order_id").values(
        order_id=order.order_id, user_id=order.user_id, amount_cents=order.amount_cents, status=RESERVED,
        created_at=now, updated_at=now).returning(credit_reservations.c.order_id)
    return session.execute(statement).scalar_one_or_none() is not None


def reserve_credit(uow: UnitOfWork, order: OrderAmount, now: datetime | None = None) -> str:
    """Reserve the order's amount from its user's credit, or reject it; at most once per order."""
    # >>> milestone credit-ledger
    with uow:
        session = uow.session
        now = now or datetime.now(UTC)
        if not _claim_order(session, order, now):
            return ALREADY_HANDLED
        # Check and spend in one statement: the row lock makes a concurrent reservation re-read the balance.
        spent = session.execute(
            update(users)
            .where(users.c.id == order.user_id,
                   users.c.credit_limit_cents - users.c.reserved_cents >= order.amount_cents)
            .values(reserved_cents=users.c.reserved_cents + order.amount_cents))
        if spent.rowcount == 1:
            uow.publish("credit.reserved", reserved_data(order))
            return RESERVED_NOW
        known = session.execute(select(users.c.id).where(users.c.id == order.user_id)).first() is not None
        reason = INSUFFICIENT_CREDIT if known else UNKNOWN_USER
        session.execute(update(credit_reservations).where(credit_reservations.c.order_id == order.order_id)
                        .values(status=REJECTED, reason=reason, updated_at=now))
        uow.publish("credit.rejected", rejected_data(order, reason))
        return REJECTED_NOW
    # <<< milestone credit-ledger


def release_credit(uow: UnitOfWork, order_id: str, now: datetime | None = None) -> str:
    """Give back a RESERVED reservation's amount; nothing for a released, rejected or unknown order."""
    # >>> milestone credit-ledger
    with uow:
        session = uow.session
        now = now or datetime.now(UTC)
        released = session.execute(
            update(credit_reservations)
            .where(credit_reservations.c.order_id == order_id, credit_reservations.c.status == RESERVED)
            .values(status=RELEASED, updated_at=now)
            .returning(credit_reservations.c.user_id, credit_reservations.c.amount_cents)).one_or_none()
        if released is None:
            return NOTHING_TO_RELEASE
        session.execute(update(users).where(users.c.id == released.user_id)
                        .values(reserved_cents=users.c.reserved_cents - released.amount_cents))
        uow.publish("credit.released", reserved_data(OrderAmount(order_id, released.user_id,
                                                                 released.amount_cents)))
        return RELEASED_NOW
    # <<< milestone credit-ledger
