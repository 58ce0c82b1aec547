"""An order's carrier timeline, newest scan first (for the order pages and the API)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orders.store.db import Database
from orders.store.model import TrackingEvent

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
        rows = session.scalars(
            select(TrackingEvent)
            .where(TrackingEvent.order_id == order_id)
            .order_by(TrackingEvent.occurred_at.desc(), TrackingEvent.id.desc())
            .limit(MAX_EVENTS)
        )
        return [
            TrackingEventView(
                row.status, row.occurred_at, row.description, row.estimated_delivery_at,
                row.carrier,
            )
            for row in rows
        ]  # fmt: skip
