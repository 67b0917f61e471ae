"""The products the shop sells, with no I/O: the ``Product`` value and the catalogue seeded at start."""

from __future__ import annotations

import re
from dataclasses import dataclass

CURRENCY = "EUR"
# Every SKU the shop sells looks like this; anything else cannot be in the catalogue.
SKU_SHAPE = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    price_cents: int
    currency: str = CURRENCY


def could_be_a_sku(text: str) -> bool:
    """False for text no product can have, which the database is then never asked about (PostgreSQL
    refuses NUL characters and unpaired surrogates with an error rather than finding nothing)."""
    return SKU_SHAPE.fullmatch(text) is not None


# The workstation costs more than the default credit limit (100000 cents), so a learner sees a rejection.
SEED_PRODUCTS: tuple[Product, ...] = (
    Product("keyboard", "Mechanical keyboard", 4999),
    Product("mouse", "Wireless mouse", 1999),
    Product("monitor", "27-inch monitor", 18999),
    Product("usb-c-cable", "USB-C cable, 2 m", 999),
    Product("laptop-stand", "Aluminium laptop stand", 3499),
    Product("headset", "Noise-cancelling headset", 7999),
    Product("workstation", "Workstation tower", 250000),
)
