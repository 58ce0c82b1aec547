"""One open order per household and product; voice purchases that wait for approval

Orders name the product they hold for their shopper while open (`held_product_id`; None
for an order asked for on purpose), and a partial unique index keeps one such open order
per shopper and product across processes. Existing orders hold nothing: the placement
decision still sees them as open, and no backfill can collide with the new index.
Shoppers get `voice_approval`: on, voice purchases wait for approval on the web.

Revision ID: dev_household_01
Revises: web_design_01
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dev_household_01"
down_revision: str | Sequence[str] | None = "ops_bench_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_HELD = sa.text(
    "held_product_id IS NOT NULL AND status IN ('pending_approval', 'placed', 'shipped')"
)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held_product_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_orders_held_product_id_products"), "products", ["held_product_id"], ["id"]
        )
        batch_op.create_index(
            "uq_orders_open_shopper_product",
            ["shopper_id", "held_product_id"],
            unique=True,
            sqlite_where=_HELD,
            postgresql_where=_HELD,
        )
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("voice_approval", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )


def downgrade() -> None:
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.drop_column("voice_approval")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_orders_open_shopper_product", sqlite_where=_HELD, postgresql_where=_HELD
        )
        batch_op.drop_constraint("fk_orders_held_product_id_products", type_="foreignkey")
        batch_op.drop_column("held_product_id")
