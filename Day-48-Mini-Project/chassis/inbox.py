"""The inbox: the event ids a consumer has applied, so that a redelivered event is dropped.

A row is inserted in the same transaction as the handler's changes (chassis/unit_of_work.py): if
that transaction commits, the event counts as applied, and a second delivery of it (the broker
redelivers whatever was not acked when a consumer died) finds the row and changes nothing. Create
the table at start with ``inbox_metadata.create_all(engine)`` (``create_schema`` does).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, MetaData, String, Table

from chassis.database import insert_ignoring_duplicates
from chassis.events import Event

inbox_metadata = MetaData()

inbox = Table(
    "inbox", inbox_metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(200), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, default=lambda: datetime.now(UTC)),
)


def record_in_inbox(session, event: Event) -> bool:
    """Insert the inbox row; False when the event was already processed (or is being, elsewhere)."""
    statement = insert_ignoring_duplicates(session, inbox, "event_id").values(
        event_id=event.id, event_type=event.type, processed_at=datetime.now(UTC)).returning(inbox.c.event_id)
    return session.execute(statement).scalar_one_or_none() is not None
