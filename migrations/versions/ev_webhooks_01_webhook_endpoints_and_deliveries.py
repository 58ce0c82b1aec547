"""Webhook endpoints and deliveries; outbox rows about more than orders

Merchants subscribe endpoints to their store's events; the dispatcher fans each outbox row
out into one delivery per subscribed endpoint and works those off with retries. Outbox rows
may now be about a device or a product (`order_id` NULL).

Revision ID: ev_webhooks_01
Revises: ev_addresses_01
Create Date: 2026-12-06 01:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "ev_webhooks_01"
down_revision: str | Sequence[str] | None = "ev_api_02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")


def _when() -> orders.store.db.UTCDateTime:
    return orders.store.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.String(length=32), nullable=True)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", _when(), nullable=True),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], name=op.f("fk_webhook_endpoints_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_store_id"), "webhook_endpoints", ["store_id"], unique=False
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("ordering_key", sa.String(length=48), nullable=True),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _when(), nullable=False),
        sa.Column("last_attempt_at", _when(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_response", sa.String(length=300), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("delivered_at", _when(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_webhook_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"], ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["order_events.id"],
            name=op.f("fk_webhook_deliveries_event_id_order_events"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "endpoint_id", "event_id", name=op.f("uq_webhook_deliveries_endpoint_id")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at", "id"], unique=False,
        sqlite_where=_PENDING, postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_webhook_deliveries_pending_order", "webhook_deliveries",
        ["endpoint_id", "ordering_key", "event_id"], unique=False,
        sqlite_where=_PENDING, postgresql_where=_PENDING,
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id", "webhook_deliveries", ["endpoint_id", "id"],
        unique=False,
    )


    op.create_table(
        "webhook_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("raised_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_alerts")),
        sa.UniqueConstraint("kind", "subject", name=op.f("uq_webhook_alerts_kind")),
    )


def downgrade() -> None:
    op.drop_table("webhook_alerts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.execute("DELETE FROM order_events WHERE order_id IS NULL")
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.alter_column("order_id", existing_type=sa.String(length=32), nullable=False)
