"""The outbox: one row per order change, written in the change's own transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, text
from sqlalchemy.orm import Session

from orders.model import Order, OrderEvent

# PostgreSQL NOTIFY channel that wakes hub processes when an event row commits.
ORDER_EVENTS_CHANNEL = "restock_order_events"
_NOTIFY = text("SELECT pg_notify(:channel, :order_id)")
_INSERT = insert(OrderEvent).inline()  # no RETURNING: nothing reads the new ids


def record_event(session: Session, order: Order, kind: str, now: datetime) -> None:
    """Write one outbox row for `order`, in the caller's transaction."""
    insert_event(
        session.connection(),
        order_id=order.id,
        store_id=order.store_id,
        status=order.status,
        kind=kind,
        device_id=order.device_id,
        shopper_id=order.shopper_id,
        now=now,
    )


def insert_event(
    conn: Connection,
    *,
    order_id: str,
    store_id: int,
    status: str,
    kind: str,
    device_id: int | None,
    shopper_id: int | None,
    now: datetime,
) -> None:
    """The same outbox row, written with Core (for hot paths without ORM objects)."""
    insert_events(
        conn,
        [
            {
                "order_id": order_id,
                "store_id": store_id,
                "type": kind,
                "status": status,
                "data": {"device_id": device_id, "shopper_id": shopper_id},
                "created_at": now,
            }
        ],
    )


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many outbox rows (`order_events` columns) in one executemany, each with its NOTIFY."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        # Delivered only when (and if) this transaction commits, like the rows themselves.
        notes = [{"channel": ORDER_EVENTS_CHANNEL, "order_id": row["order_id"]} for row in rows]
        conn.execute(_NOTIFY, notes)
    conn.execute(_INSERT, rows)
