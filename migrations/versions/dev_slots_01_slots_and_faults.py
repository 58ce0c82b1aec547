"""Slots and maintenance: per-slot link rules, a slot's default policy, model conditions,
device faults, and the link setting that lets a fault suggest an order

Revision ID: dev_slots_01
Revises: ev_tracking_01
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "dev_slots_01"
down_revision: str | Sequence[str] | None = "oscore_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = orders.store.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("device_model_slots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "policy", sa.String(length=16), server_default=sa.text("'threshold'"),
                nullable=False,
            )
        )  # fmt: skip
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "maintenance_orders", sa.Boolean(), server_default=sa.text("false"),
                nullable=False,
            )
        )  # fmt: skip
    op.create_table(
        "device_link_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("reorder_point", sa.Float(), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "policy IN ('threshold', 'predictive', 'off')", name=op.f("ck_device_link_slots_policy")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_device_link_slots_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["link_id"], ["device_links.id"],
            name=op.f("fk_device_link_slots_link_id_device_links"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_link_slots")),
        sa.UniqueConstraint("link_id", "slot", name=op.f("uq_device_link_slots_link_id")),
    )  # fmt: skip
    op.create_table(
        "device_model_conditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('flag', 'percent', 'code', 'counter')",
            name=op.f("ck_device_model_conditions_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["device_models.id"],
            name=op.f("fk_device_model_conditions_model_id_device_models"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"],
            name=op.f("fk_device_model_conditions_product_id_products"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_model_conditions")),
        sa.UniqueConstraint("model_id", "name", name=op.f("uq_device_model_conditions_model_id")),
    )  # fmt: skip
    op.create_table(
        "device_faults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("condition", sa.String(length=64), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("raised_at", _WHEN, nullable=False),
        sa.Column("cleared_at", _WHEN, nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"],
            name=op.f("fk_device_faults_device_id_devices"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"],
            name=op.f("fk_device_faults_store_id_stores"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["device_links.id"],
            name=op.f("fk_device_faults_link_id_device_links"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"],
            name=op.f("fk_device_faults_product_id_products"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"],
            name=op.f("fk_device_faults_order_id_orders"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_faults")),
    )  # fmt: skip
    op.create_index(op.f("ix_device_faults_store_id"), "device_faults", ["store_id"])
    op.create_index(
        "uq_device_faults_open",
        "device_faults",
        ["device_id", "condition"],
        unique=True,
        sqlite_where=sa.text("cleared_at IS NULL"),
        postgresql_where=sa.text("cleared_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_device_faults_open", table_name="device_faults")
    op.drop_index(op.f("ix_device_faults_store_id"), table_name="device_faults")
    op.drop_table("device_faults")
    op.drop_table("device_model_conditions")
    op.drop_table("device_link_slots")
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_column("maintenance_orders")
    with op.batch_alter_table("device_model_slots", schema=None) as batch_op:
        batch_op.drop_column("policy")
