"""The late-parcel opt-in of a link: order one replacement once a parcel is this many days late

Revision ID: replenish_01
Revises: dev_testorders_01
Create Date: 2026-12-06 03:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "replenish_01"
down_revision: str | Sequence[str] | None = "dev_household_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("late_reorder_days", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_column("late_reorder_days")
