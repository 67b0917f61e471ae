"""The service layer: plain functions the HTTP routes and the event handlers call.

Each takes a unit of work (chassis/unit_of_work.py) and does its work inside ``with uow:``: called
from a route, that is its own transaction; called from an event handler, it joins the consumer's,
which holds the event's inbox row. Events leave through ``uow.publish``, in the same transaction.
``place_order`` must own its unit of work: when a concurrent request with the same idempotency key
wins the race, its transaction is rolled back and the winner's answer is read in a fresh one.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace

from chassis.database import as_utc, insert_ignoring_duplicates
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from orders_service.catalogue import CURRENCY, SEED_PRODUCTS, Product, could_be_a_sku
from orders_service.idempotency import KeyReusedWithAnotherRequest
from orders_service.order_request import RequestedLine
from orders_service.order_states import InvalidTransition, OrderStatus, can_transition, transition
from orders_service.pricing import OrderLine, order_total, price_lines
from orders_service.tables import idempotency_keys, order_lines, orders, products

log = logging.getLogger(__name__)

CREATED = 201


class OrderNotFound(Exception):
    """No such order, or not the caller's: the two must look the same from outside."""


@dataclass(frozen=True)
class PlacedOrder:
    status: int
    body: dict  # the order as answered
    replayed: bool  # True when this is the stored answer to an earlier request with the same key


def _now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return as_utc(moment).isoformat()


# --- the catalogue ---------------------------------------------------------------------------

def seed_catalogue(uow: UnitOfWork, seed: Iterable[Product] = SEED_PRODUCTS) -> int:
    """Fill an empty catalogue with ``seed``; returns how many products were added (0 if it had any)."""
    with uow:
        if uow.session.execute(select(func.count()).select_from(products)).scalar_one():
            return 0
        rows = [{"sku": p.sku, "name": p.name, "price_cents": p.price_cents, "currency": p.currency} for p in seed]
        # Two processes starting at once may both find the table empty; the second one's rows are dropped.
        uow.session.execute(insert_ignoring_duplicates(uow.session, products, "sku"), rows)
        return len(rows)


def list_products(uow: UnitOfWork) -> list[dict]:
    with uow:
        rows = uow.session.execute(select(products).order_by(products.c.sku)).all()
    return [{"sku": r.sku, "name": r.name, "price_cents": r.price_cents, "currency": r.currency} for r in rows]


def catalogue_for(session: Session, skus: Iterable[str]) -> dict[str, Product]:
    """The products with these SKUs; SKUs no product can have are simply not found."""
    wanted = {sku for sku in skus if could_be_a_sku(sku)}
    if not wanted:
        return {}
    rows = session.execute(select(products).where(products.c.sku.in_(wanted))).all()
    return {r.sku: Product(r.sku, r.name, r.price_cents, r.currency) for r in rows}


# --- reading orders ---------------------------------------------------------------------------

def order_document(order, lines: Iterable) -> dict:
    """An order as the API shows it, from its row and its line rows (or ``OrderLine``s)."""
    return {
        "id": order.id,
        "user_id": order.user_id,
        "status": order.status,
        "lines": [{"sku": line.sku, "name": line.name, "quantity": line.quantity,
                   "unit_price_cents": line.unit_price_cents, "line_total_cents": line.line_total_cents}
                  for line in lines],
        "total_cents": order.total_cents,
        "currency": order.currency,
        "created_at": rfc3339(order.created_at),
        "updated_at": rfc3339(order.updated_at),
        "reason": order.reason,
    }


def _lines_of(session: Session, order_ids: list[str]) -> dict[str, list]:
    grouped: dict[str, list] = {order_id: [] for order_id in order_ids}
    query = (select(order_lines).where(order_lines.c.order_id.in_(order_ids))
             .order_by(order_lines.c.order_id, order_lines.c.line_no))
    for line in session.execute(query).all():
        grouped[line.order_id].append(line)
    return grouped


def _owned_order(session: Session, user_id: str, order_id: str):
    query = select(orders).where(orders.c.id == order_id, orders.c.user_id == user_id)
    return session.execute(query).first()


def _document_of(session: Session, user_id: str, order_id: str) -> dict:
    order = _owned_order(session, user_id, order_id)
    if order is None:
        raise OrderNotFound(order_id)
    return order_document(order, _lines_of(session, [order.id])[order.id])


def get_order(uow: UnitOfWork, user_id: str, order_id: str) -> dict:
    with uow:
        return _document_of(uow.session, user_id, order_id)


def list_orders(uow: UnitOfWork, user_id: str, limit: int) -> list[dict]:
    """The user's orders, newest first."""
    query = (select(orders).where(orders.c.user_id == user_id)
             .order_by(orders.c.created_at.desc(), orders.c.id.desc()).limit(limit))
    with uow:
        rows = uow.session.execute(query).all()
        lines = _lines_of(uow.session, [row.id for row in rows])
    return [order_document(row, lines[row.id]) for row in rows]


# --- placing an order -------------------------------------------------------------------------

def _create_order(uow: UnitOfWork, user_id: str, requested: tuple[RequestedLine, ...]) -> dict:
    session = uow.session
    lines: tuple[OrderLine, ...] = price_lines(requested, catalogue_for(session, (r.sku for r in requested)))
    now = _now()
    order = {"id": uuid.uuid4().hex, "user_id": user_id, "status": OrderStatus.PENDING.value,
             "total_cents": order_total(lines), "currency": CURRENCY, "reason": None,
             "created_at": now, "updated_at": now}
    session.execute(insert(orders).values(**order))
    session.execute(insert(order_lines), [
        {"order_id": order["id"], "line_no": number, "sku": line.sku, "name": line.name,
         "quantity": line.quantity, "unit_price_cents": line.unit_price_cents,
         "line_total_cents": line.line_total_cents}
        for number, line in enumerate(lines, start=1)])
    uow.publish("order.created", {
        "order_id": order["id"], "user_id": user_id, "total_cents": order["total_cents"], "currency": CURRENCY,
        "lines": [{"sku": line.sku, "quantity": line.quantity, "unit_price_cents": line.unit_price_cents}
                  for line in lines]})
    return order_document(SimpleNamespace(**order), lines)


def _stored_answer(uow: UnitOfWork, user_id: str, key: str, request_fingerprint: str) -> PlacedOrder | None:
    with uow:
        stored = uow.session.execute(select(idempotency_keys).where(
            idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)).first()
    if stored is None:
        return None
    if stored.fingerprint != request_fingerprint:
        raise KeyReusedWithAnotherRequest(key)
    return PlacedOrder(stored.response_status, json.loads(stored.response_body), replayed=True)


def place_order(uow: UnitOfWork, user_id: str, requested: tuple[RequestedLine, ...], *,
                idempotency_key: str | None = None, request_fingerprint: str = "") -> PlacedOrder:
    """Create a PENDING order and its ``order.created`` event in one transaction.

    With an idempotency key the answer is stored in that transaction too; a request repeating
    the key and body gets that answer back instead of a second order, and one repeating the key
    with another body gets ``KeyReusedWithAnotherRequest``.
    """
    if idempotency_key is not None:
        earlier = _stored_answer(uow, user_id, idempotency_key, request_fingerprint)
        if earlier is not None:
            return earlier
    try:
        with uow:
            document = _create_order(uow, user_id, requested)
            if idempotency_key is not None:
                uow.session.execute(insert(idempotency_keys).values(
                    user_id=user_id, key=idempotency_key, fingerprint=request_fingerprint,
                    order_id=document["id"], response_status=CREATED,
                    response_body=json.dumps(document, separators=(",", ":")), created_at=_now()))
    except IntegrityError:
        # A concurrent request with the same key committed first: ours rolled back, answer as it did.
        winner = None
        if idempotency_key is not None:
            winner = _stored_answer(uow, user_id, idempotency_key, request_fingerprint)
        if winner is None:
            raise
        return winner
    return PlacedOrder(CREATED, document, replayed=False)


# --- changing an order's status ---------------------------------------------------------------

def _move(session: Session, order, target: OrderStatus, reason: str | None = None) -> bool:
    """Conditional UPDATE from the status we read: False when someone else moved the order first."""
    result = session.execute(update(orders)
                             .where(orders.c.id == order.id, orders.c.status == order.status)
                             .values(status=target.value, reason=reason, updated_at=_now()))
    return result.rowcount == 1


# --8<-- [start:cancel_order]
def cancel_order(uow: UnitOfWork, user_id: str, order_id: str) -> dict:
    """APPROVED → CANCELLED with ``order.cancelled`` (which releases the credit); ``InvalidTransition``
    from any other status, ``OrderNotFound`` for a missing or someone else's order."""
    # >>> milestone orders
    with uow:
        session = uow.session
        order = _owned_order(session, user_id, order_id)
        if order is None:
            raise OrderNotFound(order_id)
        transition(order.status, OrderStatus.CANCELLED)
        if not _move(session, order, OrderStatus.CANCELLED):
            current = session.execute(select(orders.c.status).where(orders.c.id == order_id)).scalar_one()
            raise InvalidTransition(OrderStatus(current), OrderStatus.CANCELLED)
        uow.publish("order.cancelled", {"order_id": order.id, "user_id": order.user_id,
                                        "total_cents": order.total_cents})
        return _document_of(session, user_id, order_id)
    # <<< milestone orders
# --8<-- [end:cancel_order]


def record_credit_decision(uow: UnitOfWork, order_id: str, target: OrderStatus,
                           reason: str | None = None) -> bool:
    """PENDING → APPROVED (``order.approved``) or REJECTED with ``reason`` (``order.rejected``).

    An order that is no longer PENDING (a duplicate or late decision) is left alone: logged,
    False. A missing order raises ``OrderNotFound``, so the delivery is retried, then dead-lettered.
    """
    # >>> milestone orders
    with uow:
        order = uow.session.execute(select(orders).where(orders.c.id == order_id)).first()
        if order is None:
            raise OrderNotFound(order_id)
        if not can_transition(order.status, target) or not _move(uow.session, order, target, reason):
            log.info("order %s is %s, so a decision to make it %s changes nothing", order_id, order.status, target)
            return False
        if target is OrderStatus.APPROVED:
            uow.publish("order.approved", {"order_id": order.id, "user_id": order.user_id,
                                           "total_cents": order.total_cents})
        else:
            uow.publish("order.rejected", {"order_id": order.id, "user_id": order.user_id, "reason": reason})
        return True
    # <<< milestone orders
