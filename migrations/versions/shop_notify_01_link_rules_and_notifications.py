"""Link rules after linking (vacation, names, order-up-to, more policies, a change log) and
shopper notifications

Revision ID: shop_notify_01
Revises: ev_tracking_01
Create Date: 2026-12-06 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import orders.store.db

revision: str = "shop_notify_01"
down_revision: str | Sequence[str] | None = "ev_tracking_01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHEN = orders.store.db.UTCDateTime(timezone=True)
_ACTIVE = sa.text("status = 'active'")
_UNREAD = sa.text("read_at IS NULL")
_SENDING = sa.text("email_status = 'pending' OR alexa_status = 'pending'")
_NEW_POLICIES = "policy IN ('threshold', 'predictive', 'alert', 'up_to')"
_OLD_POLICIES = "policy IN ('threshold', 'predictive')"
_KINDS = (
    "kind IN ('order_placed', 'approval_needed', 'order_shipped', 'order_delayed', "
    "'order_delivered', 'supply_low', 'link_attempted', 'voice_locked')"
)
_SEND = "IN ('none', 'pending', 'sent', 'failed')"


def _policies(check: str) -> None:
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_device_links_policy"), type_="check")
        batch_op.create_check_constraint("policy", sa.text(check))


def upgrade() -> None:
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_until", _WHEN, nullable=True))
        batch_op.add_column(sa.Column("name", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("order_up_to", sa.Float(), nullable=True))
    _policies(_NEW_POLICIES)
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_notices", sa.JSON(), nullable=True))
    op.create_table(
        "link_rule_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=True),
        sa.Column("new_value", sa.String(length=200), nullable=True),
        sa.Column("changed_at", _WHEN, nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["device_links.id"],
            name=op.f("fk_link_rule_changes_link_id_device_links"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_rule_changes")),
    )  # fmt: skip
    op.create_index("ix_link_rule_changes_link_id_id", "link_rule_changes", ["link_id", "id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shopper_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.String(length=32), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", _WHEN, nullable=False),
        sa.Column("read_at", _WHEN, nullable=True),
        sa.Column("email_status", sa.String(length=16), nullable=False),
        sa.Column("alexa_status", sa.String(length=16), nullable=False),
        sa.Column("send_attempts", sa.Integer(), nullable=False),
        sa.Column("next_send_at", _WHEN, nullable=True),
        sa.CheckConstraint(_KINDS, name=op.f("ck_notifications_kind")),
        sa.CheckConstraint(f"email_status {_SEND}", name=op.f("ck_notifications_email_status")),
        sa.CheckConstraint(f"alexa_status {_SEND}", name=op.f("ck_notifications_alexa_status")),
        sa.ForeignKeyConstraint(
            ["shopper_id"], ["shoppers.id"],
            name=op.f("fk_notifications_shopper_id_shoppers"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["order_events.id"],
            name=op.f("fk_notifications_event_id_order_events"), ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"],
            name=op.f("fk_notifications_order_id_orders"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.id"],
            name=op.f("fk_notifications_device_id_devices"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("event_id", "shopper_id", name=op.f("uq_notifications_event_id")),
    )  # fmt: skip
    op.create_index("ix_notifications_shopper_id_id", "notifications", ["shopper_id", "id"])
    op.create_index(
        "ix_notifications_unread", "notifications", ["shopper_id"],
        sqlite_where=_UNREAD, postgresql_where=_UNREAD,
    )  # fmt: skip
    op.create_index(
        "ix_notifications_sending", "notifications", ["next_send_at"],
        sqlite_where=_SENDING, postgresql_where=_SENDING,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("notifications")
    op.drop_table("link_rule_changes")
    with op.batch_alter_table("shoppers", schema=None) as batch_op:
        batch_op.drop_column("email_notices")
    # The older schema knows two policies; a link on a newer one falls back to its level.
    op.execute("UPDATE device_links SET policy = 'threshold' WHERE NOT (" + _OLD_POLICIES + ")")
    _policies(_OLD_POLICIES)
    with op.batch_alter_table("device_links", schema=None) as batch_op:
        batch_op.drop_column("order_up_to")
        batch_op.drop_column("name")
        batch_op.drop_column("paused_until")
