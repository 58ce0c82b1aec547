"""An order's carrier timeline, newest scan first (for the order pages and the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from orders.domain import rules
from orders.queries.quotes import expected_arrival
from orders.store.db import Database
from orders.store.model import Order, Store, TrackingEvent

MAX_EVENTS = 100


@dataclass(frozen=True)
class TrackingEventView:
    """One carrier scan as shown to people."""

    status: str
    occurred_at: datetime
    description: str | None
    estimated_delivery_at: datetime | None
    carrier: str | None

    def as_api(self) -> dict[str, Any]:
        """The REST shape of a scan."""
        return {
            "status": self.status,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "description": self.description,
            "estimated_delivery": (
                self.estimated_delivery_at.date().isoformat()
                if self.estimated_delivery_at
                else None
            ),
            "carrier": self.carrier,
        }


def tracking_timeline(db: Database, order_id: str) -> list[TrackingEventView]:
    """The order's scans, newest first; the caller has already checked who may see the order."""
    with db.read() as session:
        return _timeline(session, order_id)


def _timeline(session: Session, order_id: str) -> list[TrackingEventView]:
    rows = session.scalars(
        select(TrackingEvent)
        .where(TrackingEvent.order_id == order_id)
        .order_by(TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc())
        .limit(MAX_EVENTS)
    )
    return [
        TrackingEventView(
            row.status, row.occurred_at, row.description, row.estimated_delivery_at, row.carrier
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Tracking:
    """What the order pages show of a parcel: the expected day, why it slipped, the scans."""

    expected_on: date | None  # None once cancelled or delivered
    delay_reason: str | None
    events: list[TrackingEventView]
    left_store: bool = False  # shipped or delivered: the parcel is the carrier's now


def order_tracking(db: Database, order_id: str) -> Tracking:
    """The parcel of an order the caller may see: its expected day (carrier's or promised)."""
    with db.read() as session:  # one snapshot: the order and its scans agree
        row = session.execute(
            select(Order.status, Order.created_at, Order.expected_delivery_at,
                   Order.delay_reason, Store.lead_time_days)
            .join(Store, Store.id == Order.store_id)
            .where(Order.id == order_id)
        ).first()  # fmt: skip
        events = _timeline(session, order_id) if row is not None else []
    if row is None:
        return Tracking(None, None, [])
    status, created_at, carrier_day, reason, lead_time = row
    expected: date | None = None
    if status not in ("cancelled", "delivered"):
        expected = carrier_day.date() if carrier_day else expected_arrival(created_at, lead_time)
    return Tracking(expected, reason, events, left_store=rules.left_store(status))
