"""The service's own table (SQLAlchemy Core), in its own database."""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, String, Table

metadata = MetaData()

shipments = Table(
    "shipments", metadata,
    Column("id", String(32), primary_key=True),
    Column("order_id", String(32), nullable=False, unique=True),  # one shipment per order, however often approved
    Column("user_id", String(32), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
