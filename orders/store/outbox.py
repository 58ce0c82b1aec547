"""The outbox: one row per order change, written in the change's own transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Connection, Select, String, bindparam, func, select
from sqlalchemy.orm import Session

from orders.domain.ops import traced
from orders.store.flights import Write, insert_rows
from orders.store.model import Order, OrderEvent

# PostgreSQL NOTIFY channel that wakes hub processes when an event row commits. The payload
# is the changed orders' ids, comma-separated (one NOTIFY per batch of changes).
ORDER_EVENTS_CHANNEL = "restock_order_events"
# PostgreSQL refuses payloads of 8000 bytes or more; order ids are 32 characters.
_PAYLOAD_LIMIT = 7_000
# One NOTIFY per payload, in one statement however many there are.
NOTIFY: Select[tuple[Any]] = select(
    func.pg_notify(bindparam("channel"), func.unnest(bindparam("payloads", type_=ARRAY(String))))
)


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


def record_store_event(
    session: Session, store_id: int, kind: str, data: dict[str, Any], now: datetime
) -> None:
    """An outbox row about something else than an order (`device.linked`, `stock.low`…);
    its `data` is the event's body, built here since such events are rare."""
    insert_events(
        session.connection(),
        [
            {
                "order_id": None,
                "store_id": store_id,
                "type": kind,
                "status": "",
                "data": data,
                "created_at": now,
            }
        ],
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
                # With the request that caused the change: its webhooks can be traced to it.
                "data": traced({"device_id": device_id, "shopper_id": shopper_id}),
                "created_at": now,
            }
        ],
    )


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Many outbox rows (`order_events` columns) in one statement, with their NOTIFY."""
    for statement, params in event_writes(conn.dialect.name, rows):
        conn.execute(statement, params)


def event_writes(dialect: str, rows: list[dict[str, Any]]) -> list[Write]:
    """The statements `insert_events` runs, for callers that send their writes together."""
    if not rows:
        return []
    writes: list[Write] = []
    if dialect == "postgresql":
        # Delivered only when (and if) this transaction commits, like the rows themselves.
        writes.append((NOTIFY, notify_params(rows)))
    writes.append(insert_rows(dialect, OrderEvent.__table__, rows))
    return writes


def notify_params(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The parameters of `NOTIFY` for these outbox rows (PostgreSQL)."""
    # Rows about no order still wake the webhook workers, with an empty payload.
    payloads = notify_payloads(row["order_id"] for row in rows if row["order_id"]) or [""]
    return {"channel": ORDER_EVENTS_CHANNEL, "payloads": payloads}


def notify_payloads(order_ids: Iterable[str]) -> list[str]:
    """The NOTIFY payloads naming these orders: comma-joined, each under PostgreSQL's limit."""
    payloads: list[str] = []
    current: list[str] = []
    size = 0
    for order_id in dict.fromkeys(order_ids):
        if current and size + len(order_id) + 1 > _PAYLOAD_LIMIT:
            payloads.append(",".join(current))
            current, size = [], 0
        current.append(order_id)
        size += len(order_id) + 1
    if current:
        payloads.append(",".join(current))
    return payloads


def notified_order_ids(payload: str) -> list[str]:
    """The order ids a NOTIFY payload names."""
    return [order_id for order_id in payload.split(",") if order_id]
