"""The service's own tables (SQLAlchemy Core), for PostgreSQL and SQLite alike."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Text

metadata = MetaData()

notifications = Table(
    "notifications", metadata,
    Column("id", String(32), primary_key=True),
    # The inbox already drops a redelivered event; this constraint guards even without it.
    Column("event_id", String(64), nullable=False, unique=True),
    Column("user_id", String(32), nullable=False),
    Column("event_type", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
# A user's inbox is read newest first: the index serves the filter and the order at once.
Index("notifications_by_user", notifications.c.user_id, notifications.c.created_at)
