"""Delivery addresses: a shopper's addresses, a link's address, an order's snapshot (#16)

Revision ID: ev_addresses_01
Revises: sec_accounts_01
Create Date: 2026-12-06 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "ev_addresses_01"
down_revision: str | Sequence[str] | None = "sec_accounts_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULT = sa.text("is_default")
_SHIP = (
    ("ship_name", 200),
    ("ship_line1", 200),
    ("ship_city", 100),
    ("ship_country", 2),
    ("ship_line2", 200),
    ("ship_postcode", 20),
    ("ship_region", 100),
    ("ship_phone", 32),
)


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shopper_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=True),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", orders.store.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shopper_id"],
            ["shoppers.id"],
            name=op.f("fk_addresses_shopper_id_shoppers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_addresses_shopper_id"), ["shopper_id"], unique=False)
        batch_op.create_index(
            "uq_addresses_default_shopper",
            ["shopper_id"],
            unique=True,
            sqlite_where=_DEFAULT,
            postgresql_where=_DEFAULT,
        )
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_device_links_address_id_addresses"),
            "addresses",
            ["address_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, length in _SHIP:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        for name, _length in reversed(_SHIP):
            batch_op.drop_column(name)
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_constraint("fk_device_links_address_id_addresses", type_="foreignkey")
        batch_op.drop_column("address_id")
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_index("uq_addresses_default_shopper", sqlite_where=_DEFAULT, postgresql_where=_DEFAULT)
        batch_op.drop_index(batch_op.f("ix_addresses_shopper_id"))
    op.drop_table("addresses")
