"""Time zones (store, account), per-product low-stock level and archive, SKUs unique in any case

Revision ID: web_design_01
Revises: dev_testorders_01
Create Date: 2026-12-06 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "web_design_01"
down_revision: str | Sequence[str] | None = "dev_slots_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = orders.store.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("time_zone", sa.String(length=64), nullable=True))
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("low_stock_level", sa.Integer(), nullable=False, server_default="10")
        )
        batch_op.add_column(sa.Column("archived_at", _WHEN, nullable=True))
        batch_op.create_check_constraint("low_stock_level_non_negative", "low_stock_level >= 0")
        batch_op.add_column(sa.Column("sku_folded", sa.String(length=64), nullable=True))
    op.execute("UPDATE products SET sku_folded = lower(sku)")
    # Fails, and changes nothing, where a store already has one SKU in two cases: merge first.
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.alter_column("sku_folded", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_constraint("uq_products_store_id", type_="unique")
        batch_op.create_unique_constraint(
            "uq_products_store_sku_folded", ["store_id", "sku_folded"]
        )


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint("uq_products_store_sku_folded", type_="unique")
        batch_op.create_unique_constraint("uq_products_store_id", ["store_id", "sku"])
        batch_op.drop_column("sku_folded")
        batch_op.drop_constraint("ck_products_low_stock_level_non_negative", type_="check")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("low_stock_level")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
