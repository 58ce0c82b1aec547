"""OSCORE per device: model security setting, token input material, security contexts

Revision ID: oscore_01
Revises: dev_testorders_01
Create Date: 2026-12-06 03:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "oscore_01"
down_revision: str | Sequence[str] | None = "dev_testorders_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = orders.store.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "security", sa.String(length=8), server_default=sa.text("'bearer'"), nullable=False
            )
        )
        batch_op.create_check_constraint(
            op.f("ck_device_models_security"), "security IN ('oscore', 'bearer')"
        )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("osc_ms", sa.LargeBinary(length=32), nullable=True))
        batch_op.add_column(sa.Column("osc_salt", sa.LargeBinary(length=16), nullable=True))
        batch_op.add_column(sa.Column("osc_id", sa.LargeBinary(length=16), nullable=True))
    op.create_table(
        "oscore_contexts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.LargeBinary(length=7), nullable=False),
        sa.Column("sender_id", sa.LargeBinary(length=7), nullable=False),
        sa.Column("master_salt", sa.LargeBinary(length=64), nullable=False),
        sa.Column("id_context", sa.LargeBinary(length=16), nullable=True),
        sa.Column("sender_seq_reserved", sa.BigInteger(), nullable=False),
        sa.Column("replay_floor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["token_id"], ["oauth_tokens.id"],
            name=op.f("fk_oscore_contexts_token_id_oauth_tokens"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oscore_contexts")),
        sa.UniqueConstraint("recipient_id", name=op.f("uq_oscore_contexts_recipient_id")),
        sa.UniqueConstraint("token_id", name=op.f("uq_oscore_contexts_token_id")),
    )
    op.create_table(
        "oscore_seen",
        sa.Column("context_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["context_id"], ["oscore_contexts.id"],
            name=op.f("fk_oscore_seen_context_id_oscore_contexts"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("context_id", "seq", name=op.f("pk_oscore_seen")),
    )


def downgrade() -> None:
    op.drop_table("oscore_seen")
    op.drop_table("oscore_contexts")
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_column("osc_id")
        batch_op.drop_column("osc_salt")
        batch_op.drop_column("osc_ms")
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_device_models_security"), type_="check")
        batch_op.drop_column("security")
