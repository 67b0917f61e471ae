"""Which events become a notification, and for whom (notifications-service domain, no I/O)."""

from datetime import UTC, datetime

import pytest
from notifications_service.message_templates import MalformedEvent
from notifications_service.notification import Notification, is_notified, notification_for, user_id_of

USER = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def make(event_type, data):
    return notification_for("e" * 32, event_type, data, notification_id="f" * 32, now=NOW)


def test_an_approved_order_notifies_its_user():
    notification = make("order.approved", {"order_id": "o-1", "user_id": USER, "total_cents": 1250})
    assert notification == Notification(id="f" * 32, event_id="e" * 32, user_id=USER, event_type="order.approved",
                                         message="Order o-1 approved: total €12.50", created_at=NOW)


@pytest.mark.parametrize("event_type", ["credit.reserved", "credit.rejected", "order.shipped", ""])
def test_other_event_types_notify_nobody_even_without_a_user(event_type):
    assert not is_notified(event_type)
    assert make(event_type, {}) is None, f"{event_type!r} should be ignored, not notified or failed"


def test_an_event_without_a_user_id_is_malformed():
    with pytest.raises(MalformedEvent, match="no user_id"):
        make("order.approved", {"order_id": "o-1", "total_cents": 1250})


@pytest.mark.parametrize("user_id", [None, 42, "", "0123456789ABCDEF0123456789ABCDEF", "0123-4567",
                                     USER + "0", "0123456789abcdef0123456789abcdeg", ["x"], "ü" * 32])
def test_a_user_id_that_is_not_32_lower_case_hex_is_malformed(user_id):
    with pytest.raises(MalformedEvent, match="user_id must be 32 lower-case hex"):
        user_id_of({"user_id": user_id})


def test_the_user_is_checked_before_the_message_fields():
    with pytest.raises(MalformedEvent, match="user_id"):
        make("order.approved", {"user_id": "nobody"})
