"""The unit of work: one database transaction, with the events it publishes and the event it applies.

Every change a service makes goes through one, whether an HTTP route or a consumer asked for it::

    with uow:
        ... uow.session.execute(...) ...
        uow.publish("order.created", {...})

- ``uow.session`` is the transaction's SQLAlchemy Session; leaving the block commits it, an
  exception rolls it back;
- ``uow.publish(event_type, data)`` checks ``data`` against the event type's contract
  (chassis/event_contracts.py) and writes the event to the outbox in that same transaction
  (chassis/outbox.py): it is published if and only if the change commits;
- ``uow.record_delivery(event)`` writes a consumed event's id to the inbox (chassis/inbox.py) in that
  same transaction: False when it was applied before.

A ``with uow:`` inside another on the same object joins the outer transaction: the consumer opens
the unit of work around the inbox row and calls the handler, whose service function opens it again
and so commits with the inbox row, while the same function called from a route commits on its own.
A unit of work is one request's or one delivery's: make a new one for each, never share one
between threads.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chassis.event_contracts import validate
from chassis.events import Event
from chassis.inbox import record_in_inbox
from chassis.outbox import add_to_outbox


# --8<-- [start:unit_of_work]
class UnitOfWork:
    def __init__(self, engine: Engine, source: str):
        self.engine = engine
        self.source = source  # the service that publishes: the events' ``source``
        self.session: Session | None = None
        self._depth = 0

    def __enter__(self) -> UnitOfWork:
        if self._depth == 0:
            self.session = Session(self.engine)
            self.session.begin()
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        self._depth -= 1
        if self._depth:
            return  # an inner block: the outermost one commits or rolls back
        session, self.session = self.session, None
        try:
            if exc_type is None:
                session.commit()
            else:
                session.rollback()
        finally:
            session.close()

    def publish(self, event_type: str, data: dict) -> Event:
        """Queue an event of this service in the outbox; it leaves only if the transaction commits.
        ``ContractViolation`` when ``data`` breaks the contract: a producer's bug, refused where it is made."""
        validate(event_type, data)
        event = Event(event_type, self.source, data)
        add_to_outbox(self._active(), event)
        return event

    def record_delivery(self, event: Event) -> bool:
        """Mark a consumed event applied; False when it had been (a redelivery: change nothing)."""
        return record_in_inbox(self._active(), event)
# --8<-- [end:unit_of_work]

    def _active(self) -> Session:
        if self.session is None:
            raise RuntimeError("use the unit of work inside its `with` block")
        return self.session
