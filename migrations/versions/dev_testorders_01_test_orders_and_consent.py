"""Test orders and the price guard: devices.test_mode, orders test/hold, links' agreed price

Devices get a per-unit test switch; orders a `test` flag and what a held order was agreed at;
links the product and price the shopper agreed to (backfilled from today's price) and a tolerance.

Revision ID: dev_testorders_01
Revises: shop_notify_01
Create Date: 2026-12-06 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dev_testorders_01"
down_revision: str | Sequence[str] | None = "shop_notify_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FALSE = sa.text("false")
_SWEPT = "test AND status IN ('pending_approval', 'placed')"


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("test_mode", sa.Boolean(), server_default=_FALSE, nullable=False)
        )
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consented_product_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("consented_price_minor", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "price_tolerance_minor", sa.Integer(), server_default=sa.text("0"), nullable=False
            )
        )
        batch_op.create_foreign_key(
            op.f("fk_device_links_consented_product_id_products"),
            "products",
            ["consented_product_id"],
            ["id"],
        )
        batch_op.create_check_constraint(
            op.f("ck_device_links_price_tolerance"), "price_tolerance_minor >= 0"
        )
    # Existing links consented to what they order now (their product, else their model's one
    # slot's refill product), at today's price.
    op.execute("UPDATE device_links SET consented_product_id = product_id")
    op.execute(
        "UPDATE device_links SET consented_product_id = (SELECT s.product_id FROM "
        "device_model_slots s JOIN devices d ON d.model_id = s.model_id "
        "WHERE d.id = device_links.device_id) "
        "WHERE product_id IS NULL AND (SELECT COUNT(*) FROM device_model_slots s "
        "JOIN devices d ON d.model_id = s.model_id WHERE d.id = device_links.device_id) = 1"
    )
    op.execute(
        "UPDATE device_links SET consented_price_minor = (SELECT price_minor FROM products "
        "WHERE products.id = device_links.consented_product_id) "
        "WHERE consented_product_id IS NOT NULL"
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("test", sa.Boolean(), server_default=_FALSE, nullable=False))
        batch_op.add_column(sa.Column("hold_reason", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("consented_sku", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("consented_price_minor", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_orders_hold_reason"),
            "hold_reason IS NULL OR hold_reason IN ('price_changed', 'product_changed')",
        )
        batch_op.create_index(
            "ix_orders_test_open",
            ["cancel_until"],
            unique=False,
            sqlite_where=sa.text(_SWEPT),
            postgresql_where=sa.text(_SWEPT),
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_orders_test_open", sqlite_where=sa.text(_SWEPT), postgresql_where=sa.text(_SWEPT)
        )
        batch_op.drop_constraint(op.f("ck_orders_hold_reason"), type_="check")
        batch_op.drop_column("consented_price_minor")
        batch_op.drop_column("consented_sku")
        batch_op.drop_column("hold_reason")
        batch_op.drop_column("test")
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_device_links_price_tolerance"), type_="check")
        batch_op.drop_constraint(
            op.f("fk_device_links_consented_product_id_products"), type_="foreignkey"
        )
        batch_op.drop_column("price_tolerance_minor")
        batch_op.drop_column("consented_price_minor")
        batch_op.drop_column("consented_product_id")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("test_mode")
