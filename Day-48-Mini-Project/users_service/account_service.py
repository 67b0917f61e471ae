"""Accounts: register, look up, promote. Plain functions over a unit of work (chassis/unit_of_work.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chassis.unit_of_work import UnitOfWork
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from users_service.accounts import User
from users_service.passwords import hash_password
from users_service.request_bodies import Registration
from users_service.tables import users

_USER_ID_LENGTH = 32


class EmailTaken(Exception):
    """Another account has this e-mail already."""


class UnknownEmail(LookupError):
    """No account has this e-mail."""


def user_from_row(row) -> User:
    return User(id=row.id, email=row.email, name=row.name, is_admin=bool(row.is_admin), created_at=row.created_at,
                credit_limit_cents=row.credit_limit_cents, reserved_cents=row.reserved_cents)


def register(uow: UnitOfWork, registration: Registration, *, credit_limit_cents: int,
             now: datetime | None = None) -> User:
    """Create the account and queue ``user.registered`` in the same transaction."""
    with uow:
        session = uow.session
        user = User(id=uuid.uuid4().hex, email=registration.email, name=registration.name, is_admin=False,
                    created_at=now or datetime.now(UTC), credit_limit_cents=credit_limit_cents, reserved_cents=0)
        try:
            # The unique index decides, not a SELECT before: two registrations at once cannot both win.
            session.execute(insert(users).values(
                id=user.id, email=user.email, name=user.name, password_hash=hash_password(registration.password),
                is_admin=False, credit_limit_cents=credit_limit_cents, reserved_cents=0, created_at=user.created_at))
        except IntegrityError:
            raise EmailTaken(registration.email) from None
        uow.publish("user.registered", {"user_id": user.id, "email": user.email, "name": user.name})
        return user


def find_user(uow: UnitOfWork, user_id: str) -> User | None:
    with uow:
        session = uow.session
        if len(user_id) != _USER_ID_LENGTH or not all(c in "0123456789abcdef" for c in user_id):
            return None  # not an id this service makes: no need to ask the database
        row = session.execute(select(users).where(users.c.id == user_id)).one_or_none()
        return user_from_row(row) if row else None


def promote_to_admin(uow: UnitOfWork, email: str) -> User:
    with uow:
        session = uow.session
        result = session.execute(update(users).where(users.c.email == email).values(is_admin=True))
        if result.rowcount != 1:
            raise UnknownEmail(email)
        return user_from_row(session.execute(select(users).where(users.c.email == email)).one())
