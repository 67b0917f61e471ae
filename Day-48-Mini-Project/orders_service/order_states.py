"""The order's state machine, with no I/O: which status may follow which.

PENDING waits for the credit decision (APPROVED or REJECTED); only an APPROVED order can be
CANCELLED, which releases its credit. REJECTED and CANCELLED are final.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"


ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.APPROVED, OrderStatus.REJECTED}),
    OrderStatus.APPROVED: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.REJECTED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


class InvalidTransition(Exception):
    """``current`` cannot become ``target``; both are kept for the caller's answer."""

    def __init__(self, current: OrderStatus, target: OrderStatus):
        super().__init__(f"an order that is {current} cannot become {target}")
        self.current, self.target = current, target


def can_transition(current: OrderStatus | str, target: OrderStatus | str) -> bool:
    """Whether ``ALLOWED_TRANSITIONS`` lets an order in ``current`` move to ``target``."""
    # >>> milestone orders
    return OrderStatus(target) in ALLOWED_TRANSITIONS[OrderStatus(current)]
    # <<< milestone orders


def transition(current: OrderStatus | str, target: OrderStatus | str) -> OrderStatus:
    """``target`` if an order in ``current`` may move there, else ``InvalidTransition``."""
    # >>> milestone orders
    current, target = OrderStatus(current), OrderStatus(target)
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(current, target)
    return target
    # <<< milestone orders
