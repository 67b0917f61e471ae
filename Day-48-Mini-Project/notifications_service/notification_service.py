"""The service layer: store a notification once, read a user's newest ones. Plain functions over a
unit of work (chassis/unit_of_work.py)."""

from __future__ import annotations

from chassis.database import as_utc, insert_ignoring_duplicates
from chassis.unit_of_work import UnitOfWork
from sqlalchemy import select

from notifications_service.notification import Notification
from notifications_service.tables import notifications

DEFAULT_LIMIT, MAX_LIMIT = 50, 100


def record_notification(uow: UnitOfWork, notification: Notification) -> bool:
    """Insert ``notification`` (in the consumer's transaction); False when its event was already notified."""
    with uow:
        statement = insert_ignoring_duplicates(uow.session, notifications, "event_id").values(
            id=notification.id, event_id=notification.event_id, user_id=notification.user_id,
            event_type=notification.event_type, message=notification.message,
            created_at=notification.created_at).returning(notifications.c.id)
        return uow.session.execute(statement).scalar_one_or_none() is not None


def notifications_of(uow: UnitOfWork, user_id: str, limit: int = DEFAULT_LIMIT) -> list[Notification]:
    """The user's notifications, newest first, at most ``limit``."""
    query = (select(notifications).where(notifications.c.user_id == user_id)
             .order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit))
    with uow:
        rows = uow.session.execute(query).all()
    return [Notification(id=row.id, event_id=row.event_id, user_id=row.user_id, event_type=row.event_type,
                         message=row.message, created_at=as_utc(row.created_at)) for row in rows]
