"""Merchant review: a store's review threshold, and who an order waits for

Revision ID: ops_bench_01
Revises: ev_tracking_01
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ops_bench_01"
down_revision: str | Sequence[str] | None = "web_design_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_orders_over_minor", sa.Integer(), nullable=True))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("approval_by", sa.String(length=16), nullable=True))
    # Every order waiting before this revision waits for its shopper.
    op.execute("UPDATE orders SET approval_by = 'shopper' WHERE status = 'pending_approval'")


def downgrade() -> None:
    # A merchant-held order goes back to the only approver the old code knows: its shopper.
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("approval_by")
    with op.batch_alter_table("stores", schema=None) as batch_op:
        batch_op.drop_column("review_orders_over_minor")
