"""device takeover defences: refused link attempts, per-unit secrets, device-code indexes

`device_link_attempts` records another account's refused attempt to link a device that has
an active link (its owner sees it); `device_unit_secrets` holds per-unit secrets (hashed)
for device models that require proof of possession (`device_models.requires_unit_secret`);
two indexes on `oauth_device_codes` serve the expired-code purge and the pending-code cap.

Revision ID: sec_device_01
Revises: ev_addresses_01
Create Date: 2026-12-06 00:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "sec_device_01"
down_revision: str | Sequence[str] | None = "ev_addresses_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_link_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("attempted_at", orders.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"],
            name=op.f("fk_device_link_attempts_account_id_accounts"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"],
            name=op.f("fk_device_link_attempts_device_id_devices"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["link_id"], ["device_links.id"],
            name=op.f("fk_device_link_attempts_link_id_device_links"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_link_attempts")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_device_link_attempts_link_id"), "device_link_attempts", ["link_id"], unique=False
    )
    op.create_table(
        "device_unit_secrets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=128), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", orders.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["device_models.id"],
            name=op.f("fk_device_unit_secrets_model_id_device_models"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_unit_secrets")),
        sa.UniqueConstraint("model_id", "serial", name=op.f("uq_device_unit_secrets_model_id")),
    )  # fmt: skip
    with op.batch_alter_table("device_models") as batch:
        batch.add_column(
            sa.Column(
                "requires_unit_secret", sa.Boolean(), nullable=False, server_default=sa.text("false")
            )
        )
    with op.batch_alter_table("oauth_device_codes") as batch:
        batch.create_index("ix_oauth_device_codes_expires_at", ["expires_at"], unique=False)
        batch.create_index(
            "ix_oauth_device_codes_client_serial", ["client_id", "serial"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_device_codes") as batch:
        batch.drop_index("ix_oauth_device_codes_client_serial")
        batch.drop_index("ix_oauth_device_codes_expires_at")
    with op.batch_alter_table("device_models") as batch:
        batch.drop_column("requires_unit_secret")
    op.drop_table("device_unit_secrets")
    op.drop_index(op.f("ix_device_link_attempts_link_id"), table_name="device_link_attempts")
    op.drop_table("device_link_attempts")
