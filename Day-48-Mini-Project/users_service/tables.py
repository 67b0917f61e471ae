"""The users-service schema (SQLAlchemy Core; PostgreSQL and SQLite). Money is integer cents."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", String(32), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(100), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("credit_limit_cents", BigInteger, nullable=False),
    Column("reserved_cents", BigInteger, nullable=False, default=0),
    Column("created_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("reserved_cents >= 0", name="users_reserved_not_negative"),
    CheckConstraint("credit_limit_cents >= 0", name="users_limit_not_negative"),
)

refresh_tokens = Table(
    "refresh_tokens", metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 hex; the token itself is never stored
    Column("family_id", String(32), nullable=False),
    Column("user_id", String(32), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True)),  # set when it was exchanged for a new pair
    Column("revoked_at", DateTime(timezone=True)),  # set when its family was revoked
)
Index("refresh_tokens_family", refresh_tokens.c.family_id)

credit_reservations = Table(
    "credit_reservations", metadata,
    Column("order_id", String(64), primary_key=True),
    Column("user_id", String(64), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # RESERVED | RELEASED | REJECTED
    Column("reason", String(32)),  # why it was REJECTED
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
