"""Carrier tracking: tracking events, the order's expected day and delay, aggregator secrets

Revision ID: ev_tracking_01
Revises: ev_api_02
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "ev_tracking_01"
down_revision: str | Sequence[str] | None = "ev_webhooks_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = orders.store.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expected_delivery_at", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("delay_reason", sa.String(length=200), nullable=True))
        batch_op.create_index(
            "ix_orders_store_tracking_ref", ["store_id", "tracking_ref"], unique=False
        )
    op.create_table(
        "tracking_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("occurred_at", _WHEN, nullable=False),
        sa.Column("estimated_delivery_at", _WHEN, nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("carrier", sa.String(length=100), nullable=True),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.CheckConstraint(
            "status IN ('in_transit', 'out_for_delivery', 'delivered', 'exception', 'returned')",
            name=op.f("ck_tracking_events_status"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"],
            name=op.f("fk_tracking_events_order_id_orders"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"],
            name=op.f("fk_tracking_events_store_id_stores"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_events")),
        sa.UniqueConstraint(
            "order_id", "source", "external_id", name=op.f("uq_tracking_events_order_id")
        ),
    )  # fmt: skip
    op.create_index(
        "ix_tracking_events_order_occurred", "tracking_events", ["order_id", "occurred_at"]
    )
    op.create_table(
        "carrier_hooks",
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("aggregator", sa.String(length=32), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"],
            name=op.f("fk_carrier_hooks_store_id_stores"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("store_id", "aggregator", name=op.f("pk_carrier_hooks")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("carrier_hooks")
    op.drop_index("ix_tracking_events_order_occurred", table_name="tracking_events")
    op.drop_table("tracking_events")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_store_tracking_ref")
        batch_op.drop_column("delay_reason")
        batch_op.drop_column("expected_delivery_at")
