"""The domain: which events become a notification, for whom, saying what. No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from notifications_service.message_templates import TEMPLATES, MalformedEvent, render_message

USER_ID = re.compile(r"[0-9a-f]{32}")  # the contract's ids: UUIDs as 32 lower-case hex characters


@dataclass(frozen=True)
class Notification:
    id: str
    event_id: str
    user_id: str
    event_type: str
    message: str
    created_at: datetime


def is_notified(event_type: str) -> bool:
    return event_type in TEMPLATES


def user_id_of(data: Mapping) -> str:
    """The user the event is about; ``MalformedEvent`` when it is missing or not an id."""
    if "user_id" not in data:
        raise MalformedEvent("the event's data has no user_id, so nobody can be notified")
    user_id = data["user_id"]
    if not isinstance(user_id, str) or not USER_ID.fullmatch(user_id):
        raise MalformedEvent(f"data.user_id must be 32 lower-case hex characters, got {user_id!r}")
    return user_id


def notification_for(event_id: str, event_type: str, data: Mapping, *, notification_id: str,
                     now: datetime) -> Notification | None:
    """The notification an event makes, or None for a type users are not notified of."""
    if not is_notified(event_type):
        return None
    user_id = user_id_of(data)
    return Notification(id=notification_id, event_id=event_id, user_id=user_id, event_type=event_type,
                        message=render_message(event_type, data), created_at=now)
