"""presses.seq as BIGINT: a device's press counter may be any value below 2**63

On PostgreSQL the column was INTEGER, so a press with a counter of 2**31 or more (which
`orders.services.presses.check_press` accepts, as SQLite's 64-bit INTEGER does) failed with a
database error instead of being recorded. SQLite's INTEGER is 64-bit already.

Revision ID: 0003
Revises: dash_0002
Create Date: 2026-12-01 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "dash_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("presses", "seq", type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("presses", "seq", type_=sa.Integer(), existing_nullable=False)
