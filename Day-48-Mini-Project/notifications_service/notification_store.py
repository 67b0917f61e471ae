"""The service layer: store a notification once, read a user's newest ones."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from notifications_service.notification import Notification
from notifications_service.tables import notifications

DEFAULT_LIMIT, MAX_LIMIT = 50, 100


def record_notification(session, notification: Notification) -> bool:
    """Insert ``notification`` in the caller's transaction; False when its event was already notified."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(notifications).values(
        id=notification.id, event_id=notification.event_id, user_id=notification.user_id,
        event_type=notification.event_type, message=notification.message, created_at=notification.created_at)
    statement = statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(notifications.c.id)
    return session.execute(statement).scalar_one_or_none() is not None


def notifications_of(connection, user_id: str, limit: int = DEFAULT_LIMIT) -> list[Notification]:
    """The user's notifications, newest first, at most ``limit``."""
    query = (select(notifications).where(notifications.c.user_id == user_id)
             .order_by(notifications.c.created_at.desc(), notifications.c.id.desc()).limit(limit))
    return [Notification(id=row.id, event_id=row.event_id, user_id=row.user_id, event_type=row.event_type,
                         message=row.message, created_at=as_utc(row.created_at))
            for row in connection.execute(query)]


def as_utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; every time this service writes is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
