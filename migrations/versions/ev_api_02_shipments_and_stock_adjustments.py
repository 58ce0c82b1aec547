"""orders.carrier and orders.tracking_url (a shipment as the API ships it); stock_adjustments

Revision ID: ev_api_02
Revises: ev_api_01
Create Date: 2026-12-06 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from orders.store.db import UTCDateTime

revision: str = "ev_api_02"
down_revision: str | Sequence[str] | None = "ev_api_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("carrier", sa.String(100), nullable=True))
        batch.add_column(sa.Column("tracking_url", sa.String(2000), nullable=True))
    op.create_table(
        "stock_adjustments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.Integer(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("stock_after", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("delta <> 0", name=op.f("ck_stock_adjustments_delta_nonzero")),
        sa.CheckConstraint(
            "stock_after >= 0", name=op.f("ck_stock_adjustments_stock_after_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], ondelete="CASCADE",
            name=op.f("fk_stock_adjustments_product_id_products"),
        ),
        sa.ForeignKeyConstraint(
            ["store_id"], ["stores.id"], ondelete="CASCADE",
            name=op.f("fk_stock_adjustments_store_id_stores"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stock_adjustments")),
    )  # fmt: skip
    op.create_index(
        "ix_stock_adjustments_product_id_id", "stock_adjustments", ["product_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_stock_adjustments_product_id_id", table_name="stock_adjustments")
    op.drop_table("stock_adjustments")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("tracking_url")
        batch.drop_column("carrier")
