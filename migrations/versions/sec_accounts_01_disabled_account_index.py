"""accounts: a partial index of disabled accounts by shopper, for every token check

Token checks (every device request and API call) ask whether the token's shopper has a
disabled account; the index holds only disabled accounts, so the probe stays tiny.

Revision ID: sec_accounts_01
Revises: arch_decision_01 (main's head when rebased)
Create Date: 2026-12-06 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sec_accounts_01"
down_revision: str | Sequence[str] | None = "arch_decision_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_accounts_disabled_shopper",
        "accounts",
        ["shopper_id"],
        unique=False,
        sqlite_where=sa.text("disabled = 1"),
        postgresql_where=sa.text("disabled"),
    )


def downgrade() -> None:
    op.drop_index("ix_accounts_disabled_shopper", table_name="accounts")
