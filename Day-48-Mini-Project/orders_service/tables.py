"""The service's own tables (SQLAlchemy Core; PostgreSQL and SQLite alike). Money is integer cents."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

metadata = MetaData()

products = Table(
    "products", metadata,
    Column("sku", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("price_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Text, nullable=False),  # the token's sub, as the issuer wrote it
    Column("status", String(16), nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
# "My orders, newest first" is the one list query.
Index("orders_by_user_newest", orders.c.user_id, orders.c.created_at)

order_lines = Table(
    "order_lines", metadata,
    Column("order_id", String(32), ForeignKey("orders.id"), nullable=False),
    Column("line_no", Integer, nullable=False),
    Column("sku", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("line_total_cents", BigInteger, nullable=False),
    PrimaryKeyConstraint("order_id", "line_no"),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("user_id", Text, nullable=False),
    Column("key", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),  # SHA-256 of the first request's canonical body
    Column("order_id", String(32), ForeignKey("orders.id"), nullable=False),
    Column("response_status", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Keys belong to the user who sent them: the same key from two users is two keys.
    PrimaryKeyConstraint("user_id", "key"),
)
