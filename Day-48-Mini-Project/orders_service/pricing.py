"""Order lines priced from the catalogue, with no I/O: the client names products, the shop sets prices."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chassis.problems import ValidationFailed

from orders_service.catalogue import Product
from orders_service.order_request import RequestedLine, pointer


@dataclass(frozen=True)
class OrderLine:
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def line_total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


def price_lines(requested: Iterable[RequestedLine], catalogue: Mapping[str, Product]) -> tuple[OrderLine, ...]:
    """Each requested line with the catalogue's name and price; ``ValidationFailed`` for unknown SKUs."""
    requested = tuple(requested)
    unknown = [{"pointer": pointer("lines", index, "sku"), "detail": f"no product has the SKU {line.sku!r}"}
               for index, line in enumerate(requested) if line.sku not in catalogue]
    if unknown:
        raise ValidationFailed(unknown)
    return tuple(OrderLine(line.sku, catalogue[line.sku].name, line.quantity, catalogue[line.sku].price_cents)
                 for line in requested)


def order_total(lines: Iterable[OrderLine]) -> int:
    return sum(line.line_total_cents for line in lines)
