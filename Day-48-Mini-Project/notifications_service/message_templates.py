"""The human message of each event type a user is notified of: pure functions of the event's data."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

SHORT_ID_LENGTH = 8
MAX_TEXT_LENGTH = 200  # a name or reason longer than this is cut, so a message stays readable
_CURRENCY = re.compile(r"[A-Z]{3}")
_CURRENCY_SYMBOLS = {"EUR": "€"}
_REJECTION_REASONS = {
    "insufficient_credit": "not enough credit available",
    "unknown_user": "your account was not found",
}


class MalformedEvent(ValueError):
    """An event of a notified type whose data lacks a field or holds a wrong one."""


def format_money(cents: int, currency: str = "EUR") -> str:
    """``1250`` → ``€12.50``, ``5`` → ``€0.05``, ``123456`` → ``€1,234.56``; other currencies as ``12.50 USD``."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    amount = f"{whole:,}.{fraction:02d}"
    symbol = _CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def short_id(value: str) -> str:
    """The first characters of an id, enough to tell a user's orders apart."""
    return value if len(value) <= SHORT_ID_LENGTH else value[:SHORT_ID_LENGTH] + "…"


def shortened(text: str) -> str:
    return text if len(text) <= MAX_TEXT_LENGTH else text[:MAX_TEXT_LENGTH - 1] + "…"


def text_field(data: Mapping, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise MalformedEvent(f"data.{name} must be a non-empty string, got {value!r}")
    return value.strip()


def cents_field(data: Mapping, name: str) -> int:
    value = data.get(name)
    # bool is an int in Python, but true is not an amount
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise MalformedEvent(f"data.{name} must be a whole number of cents of at least 0, got {value!r}")
    return value


def currency_field(data: Mapping) -> str:
    value = data.get("currency", "EUR")
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise MalformedEvent(f"data.currency must be a three-letter currency code, got {value!r}")
    return value


def rejection_reason(reason: str) -> str:
    return _REJECTION_REASONS.get(reason, shortened(reason.replace("_", " ")))


def user_registered(data: Mapping) -> str:
    return f"Welcome, {shortened(text_field(data, 'name'))}! Your account {shortened(text_field(data, 'email'))} is ready."


def order_created(data: Mapping) -> str:
    order, total = short_id(text_field(data, "order_id")), cents_field(data, "total_cents")
    return f"Order {order} placed: total {format_money(total, currency_field(data))}, awaiting credit approval"


def order_approved(data: Mapping) -> str:
    order, total = short_id(text_field(data, "order_id")), cents_field(data, "total_cents")
    return f"Order {order} approved: total {format_money(total)}"


def order_rejected(data: Mapping) -> str:
    order, reason = short_id(text_field(data, "order_id")), text_field(data, "reason")
    return f"Order {order} rejected: {rejection_reason(reason)}"


def order_cancelled(data: Mapping) -> str:
    order, total = short_id(text_field(data, "order_id")), cents_field(data, "total_cents")
    return f"Order {order} cancelled: total {format_money(total)}"


def credit_released(data: Mapping) -> str:
    order, amount = short_id(text_field(data, "order_id")), cents_field(data, "amount_cents")
    return f"Credit of {format_money(amount)} released from order {order}"


TEMPLATES: dict[str, Callable[[Mapping], str]] = {
    "user.registered": user_registered,
    "order.created": order_created,
    "order.approved": order_approved,
    "order.rejected": order_rejected,
    "order.cancelled": order_cancelled,
    "credit.released": credit_released,
}
NOTIFIED_EVENT_TYPES = tuple(TEMPLATES)


def render_message(event_type: str, data: Mapping) -> str:
    """The message for an event of a notified type; ``KeyError`` for any other type."""
    return TEMPLATES[event_type](data)
