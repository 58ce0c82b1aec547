"""Reading the outbox (`order_events`) as a feed of status changes, for notifiers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from orders.store.db import Database
from orders.store.model import OrderEvent
from orders.store.outbox import ORDER_EVENTS_CHANNEL, notified_order_ids

__all__ = [
    "ORDER_EVENTS_CHANNEL",
    "OrderChange",
    "changes_after",
    "latest_event_id",
    "notified_order_ids",
]


@dataclass(frozen=True)
class OrderChange:
    """One outbox row: an order changed to `status`."""

    event_id: int
    order_id: str
    status: str


def latest_event_id(db: Database) -> int:
    """The newest outbox row's id (0 when empty): where a new reader starts."""
    with db.read() as session:
        return int(session.scalar(select(func.max(OrderEvent.id))) or 0)


def changes_after(db: Database, after: int, *, limit: int = 500) -> list[OrderChange]:
    """Outbox rows with an id above `after`, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(OrderEvent.id, OrderEvent.order_id, OrderEvent.status)
            .where(OrderEvent.id > after, OrderEvent.order_id.is_not(None))
            .order_by(OrderEvent.id)
            .limit(limit)
        ).all()
    return [OrderChange(row.id, row.order_id, row.status) for row in rows if row.order_id]
