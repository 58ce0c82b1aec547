"""A test-only migration after today's heads: rebuilds `orders`, which other tables refer to.

SQLite alters a table by copying it and dropping the original; the upgrade tests run this
on a filled store to prove a rebuild keeps every row that points at the rebuilt table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.script import ScriptDirectory

from restock.migrate import MIGRATIONS

revision: str = "probe_rebuild_orders"
down_revision: str | Sequence[str] | None = tuple(ScriptDirectory(str(MIGRATIONS)).get_heads())
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild() -> str:
    # PostgreSQL alters in place; only SQLite has to copy the table.
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("orders", recreate=_rebuild()) as batch_op:
        batch_op.add_column(sa.Column("probe_note", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", recreate=_rebuild()) as batch_op:
        batch_op.drop_column("probe_note")
