"""A saga: one business transaction across services, as local steps undone by compensations.

With a database per service (see 04) no single transaction can cover the customer's credit, held
by one service, and the stock, held by another. A saga runs the business transaction as a
sequence of steps, each a local transaction inside one service; when a step fails, it runs the
*compensations* of the steps already done, newest first, so the system ends consistent again.

Here an orchestrator drives three services kept in-process, so the logic stands out:
order 1 goes through; order 2 has its credit reserved, fails on stock, and gets the credit back.

Run it (no servers; it finishes at once):

    python Day-43-Microservices-Basics/examples/05_saga_orchestration.py

What this leaves out, on purpose: in a real system each step is a call or a message to another
process, which can time out, so steps and compensations must be idempotent and retried until
they succeed; and other requests can see the half-done state in between (a saga has no
isolation). Day 45 builds a saga from events (choreography) on RabbitMQ.
"""

import sys
from collections.abc import Callable
from dataclasses import dataclass


class Rejected(Exception):
    """A service said no, for a business reason: the saga must undo what it has done so far."""


@dataclass(frozen=True)
class Order:
    id: int
    customer: str
    sku: str
    quantity: int
    total_cents: int


class CreditService:
    """Customers' credit; in real life its own process and database."""

    def __init__(self, available_cents: dict[str, int]):
        self.available_cents = dict(available_cents)

    def reserve(self, order: Order) -> None:
        if self.available_cents[order.customer] < order.total_cents:
            raise Rejected(
                f"{order.customer} has only {self.available_cents[order.customer]} cents of credit"
            )
        self.available_cents[order.customer] -= order.total_cents

    def release(self, order: Order) -> None:
        self.available_cents[order.customer] += order.total_cents


class InventoryService:
    """Stock levels; in real life its own process and database."""

    def __init__(self, stock: dict[str, int]):
        self.stock = dict(stock)

    def reserve(self, order: Order) -> None:
        if self.stock[order.sku] < order.quantity:
            raise Rejected(f"only {self.stock[order.sku]} {order.sku} in stock")
        self.stock[order.sku] -= order.quantity

    def release(self, order: Order) -> None:
        self.stock[order.sku] += order.quantity


class OrderService:
    def __init__(self) -> None:
        self.status: dict[int, str] = {}

    def create_pending(self, order: Order) -> None:
        self.status[order.id] = "PENDING"

    def reject(self, order: Order) -> None:
        self.status[order.id] = "REJECTED"

    def approve(self, order: Order) -> None:
        self.status[order.id] = "APPROVED"


# --8<-- [start:saga]
@dataclass(frozen=True)
class Step:
    name: str
    action: Callable[[Order], None]
    compensation: Callable[[Order], None] | None  # None: nothing to undo, or nothing after it can fail


def run_saga(order: Order, steps: list[Step]) -> bool:
    """Run the steps in order; if one is rejected, compensate the finished ones newest first."""
    finished: list[Step] = []
    for step in steps:
        try:
            step.action(order)
        except Rejected as reason:
            print(f"  {step.name}: rejected, {reason}")
            for done in reversed(finished):
                if done.compensation is not None:
                    done.compensation(order)
                    print(f"  compensate {done.name}")
            return False
        print(f"  {step.name}: done")
        finished.append(step)
    return True


def place_order_saga(orders: OrderService, credit: CreditService, inventory: InventoryService) -> list[Step]:
    return [
        Step("create pending order", orders.create_pending, orders.reject),
        Step("reserve credit", credit.reserve, credit.release),
        Step("reserve stock", inventory.reserve, inventory.release),
        Step("approve order", orders.approve, None),  # the last step: nothing after it can fail
    ]
    # --8<-- [end:saga]


def main() -> int:
    orders = OrderService()
    credit = CreditService({"ada": 10_000})
    inventory = InventoryService({"teapot": 3})
    steps = place_order_saga(orders, credit, inventory)

    for order in (Order(1, "ada", "teapot", 2, 5_000), Order(2, "ada", "teapot", 2, 5_000)):
        print(f"order {order.id}: {order.quantity} x {order.sku} for {order.customer}")
        run_saga(order, steps)
        print(f"  -> order {order.id} {orders.status[order.id]}")

    # Consistent again: order 1 holds its credit and stock; order 2's credit came back.
    print(
        f"\nada's credit: {credit.available_cents['ada']} cents left; teapots: {inventory.stock['teapot']} left"
    )
    consistent = (
        orders.status == {1: "APPROVED", 2: "REJECTED"}
        and credit.available_cents["ada"] == 5_000
        and inventory.stock["teapot"] == 1
    )
    print("consistent: order 2's credit reservation was compensated" if consistent else "INCONSISTENT")
    return 0 if consistent else 1


if __name__ == "__main__":
    sys.exit(main())
