"""The message templates of notifications-service: exact text for every notified event type."""

import pytest
from notifications_service.message_templates import (
    NOTIFIED_EVENT_TYPES,
    MalformedEvent,
    format_money,
    render_message,
    short_id,
)

USER = "a" * 32
ORDER = "3f2a9c0d4e5b6a7980716253443f2a9c"


@pytest.mark.parametrize(("cents", "expected"), [
    (0, "€0.00"), (5, "€0.05"), (10, "€0.10"), (99, "€0.99"), (100, "€1.00"), (1250, "€12.50"),
    (123456, "€1,234.56"), (100000000, "€1,000,000.00"), (-5, "-€0.05"),
])
def test_cents_are_formatted_as_euros(cents, expected):
    assert format_money(cents) == expected, f"{cents} cents should read {expected!r}"


def test_other_currencies_are_named_after_the_amount():
    assert format_money(1250, "USD") == "12.50 USD"


def test_long_ids_are_shortened_and_short_ones_kept():
    assert short_id(ORDER) == "3f2a9c0d…"
    assert short_id("o-1") == "o-1"
    assert short_id("12345678") == "12345678"


@pytest.mark.parametrize(("event_type", "data", "expected"), [
    ("user.registered", {"user_id": USER, "email": "ada@example.com", "name": "Ada Lovelace"},
     "Welcome, Ada Lovelace! Your account ada@example.com is ready."),
    ("order.created", {"order_id": ORDER, "user_id": USER, "total_cents": 1250, "currency": "EUR",
                       "lines": [{"sku": "TEA-1", "quantity": 1, "unit_price_cents": 1250}]},
     "Order 3f2a9c0d… placed: total €12.50, awaiting credit approval"),
    ("order.approved", {"order_id": ORDER, "user_id": USER, "total_cents": 1250},
     "Order 3f2a9c0d… approved: total €12.50"),
    ("order.approved", {"order_id": ORDER, "user_id": USER, "total_cents": 5},
     "Order 3f2a9c0d… approved: total €0.05"),
    ("order.rejected", {"order_id": ORDER, "user_id": USER, "reason": "insufficient_credit"},
     "Order 3f2a9c0d… rejected: not enough credit available"),
    ("order.rejected", {"order_id": ORDER, "user_id": USER, "reason": "unknown_user"},
     "Order 3f2a9c0d… rejected: your account was not found"),
    ("order.rejected", {"order_id": ORDER, "user_id": USER, "reason": "out_of_stock"},
     "Order 3f2a9c0d… rejected: out of stock"),
    ("order.cancelled", {"order_id": ORDER, "user_id": USER, "total_cents": 0},
     "Order 3f2a9c0d… cancelled: total €0.00"),
    ("credit.released", {"order_id": ORDER, "user_id": USER, "amount_cents": 205},
     "Credit of €2.05 released from order 3f2a9c0d…"),
])
def test_each_event_type_has_its_message(event_type, data, expected):
    assert render_message(event_type, data) == expected


def test_every_notified_type_has_a_template_and_no_other():
    assert set(NOTIFIED_EVENT_TYPES) == {"user.registered", "order.created", "order.approved",
                                         "order.rejected", "order.cancelled", "credit.released"}


def test_a_very_long_name_is_cut_to_keep_the_message_readable():
    message = render_message("user.registered", {"email": "a@example.com", "name": "x" * 5000})
    assert len(message) < 300 and "x" * 199 + "…" in message


@pytest.mark.parametrize(("event_type", "data", "field"), [
    ("user.registered", {"email": "a@example.com"}, "name"),
    ("user.registered", {"email": "a@example.com", "name": "   "}, "name"),
    ("user.registered", {"email": 7, "name": "Ada"}, "email"),
    ("order.created", {"order_id": ORDER, "total_cents": 1.5}, "total_cents"),
    ("order.created", {"order_id": ORDER, "total_cents": 100, "currency": "euro"}, "currency"),
    ("order.approved", {"order_id": ORDER}, "total_cents"),
    ("order.approved", {"order_id": ORDER, "total_cents": "1250"}, "total_cents"),
    ("order.approved", {"order_id": ORDER, "total_cents": True}, "total_cents"),
    ("order.approved", {"order_id": ORDER, "total_cents": -1}, "total_cents"),
    ("order.approved", {"total_cents": 1}, "order_id"),
    ("order.rejected", {"order_id": ORDER, "reason": None}, "reason"),
    ("order.cancelled", {"order_id": ["x"], "total_cents": 1}, "order_id"),
    ("credit.released", {"order_id": ORDER, "total_cents": 1}, "amount_cents"),
])
def test_a_missing_or_wrong_field_is_a_malformed_event_naming_it(event_type, data, field):
    with pytest.raises(MalformedEvent, match=f"data.{field}"):
        render_message(event_type, data)
