"""The credit ledger's rules: what an order event must carry, reservation states, rejection reasons. No I/O.

The reservation itself is one conditional UPDATE in ``credit_service`` (the database decides, so
two consumers can never both spend the same credit); this module decides what the events mean.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RESERVED, RELEASED, REJECTED = "RESERVED", "RELEASED", "REJECTED"
INSUFFICIENT_CREDIT, UNKNOWN_USER = "insufficient_credit", "unknown_user"
MAX_AMOUNT_CENTS = 2**53  # no real order comes near; anything above is a broken message
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class InvalidEventData(ValueError):
    """An order event the ledger cannot act on; raised so the consumer retries, then dead-letters it."""


@dataclass(frozen=True)
class OrderAmount:
    order_id: str
    user_id: str
    amount_cents: int


def _identifier(data: dict, name: str, event_type: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidEventData(f"{event_type}: data.{name} must be an id (1-64 of A-Za-z0-9_-), got {value!r}")
    return value


def _amount(data: dict, name: str, event_type: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEventData(f"{event_type}: data.{name} must be a whole number of cents, got {value!r}")
    if not 0 <= value <= MAX_AMOUNT_CENTS:
        raise InvalidEventData(f"{event_type}: data.{name} must be between 0 and {MAX_AMOUNT_CENTS}, got {value}")
    return value


def order_amount(event_type: str, data: dict) -> OrderAmount:
    """``order_id``, ``user_id`` and ``total_cents`` of an ``order.created`` or ``order.cancelled``."""
    return OrderAmount(_identifier(data, "order_id", event_type), _identifier(data, "user_id", event_type),
                       _amount(data, "total_cents", event_type))


def reserved_data(order: OrderAmount) -> dict:
    return {"order_id": order.order_id, "user_id": order.user_id, "amount_cents": order.amount_cents}


def rejected_data(order: OrderAmount, reason: str) -> dict:
    return {**reserved_data(order), "reason": reason}
