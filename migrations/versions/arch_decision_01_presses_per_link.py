"""Presses and the in-progress guard per link: a re-linked device starts afresh

A device's presses were unique per (device, boot, seq) and its open orders per (device,
product), so a device unlinked by one shopper and linked by another could only answer
the new owner with the previous owner's order (`duplicate`, `in_progress`). Presses now
name their link (backfilled from their orders), and both keys include it.

Revision ID: arch_decision_01
Revises: 0003
Create Date: 2026-12-06 01:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "arch_decision_01"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("device_id IS NOT NULL AND status IN ('pending_approval', 'placed', 'shipped')")


def upgrade() -> None:
    with op.batch_alter_table("presses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_presses_link_id_device_links"), "device_links", ["link_id"], ["id"]
        )
        batch_op.drop_constraint("uq_presses_device_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_presses_device_id", ["device_id", "link_id", "boot", "seq"]
        )
    op.execute(
        "UPDATE presses SET link_id = (SELECT orders.link_id FROM orders"
        " WHERE orders.id = presses.order_id)"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_orders_open_device_product", sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.create_index(
            "uq_orders_open_device_product",
            ["device_id", "link_id", "device_product_id"],
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_orders_open_device_product", sqlite_where=_OPEN, postgresql_where=_OPEN
        )
        batch_op.create_index(
            "uq_orders_open_device_product",
            ["device_id", "device_product_id"],
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        )
    with op.batch_alter_table("presses", schema=None) as batch_op:
        batch_op.drop_constraint("uq_presses_device_id", type_="unique")
        batch_op.create_unique_constraint("uq_presses_device_id", ["device_id", "boot", "seq"])
        batch_op.drop_constraint("fk_presses_link_id_device_links", type_="foreignkey")
        batch_op.drop_column("link_id")
