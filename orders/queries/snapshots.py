"""Read-only snapshots the services return, so adapters never hold live ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from orders.domain.addresses import ShipTo, ship_to_of
from orders.store.model import Order

Outcome = Literal["placed", "needs_approval", "in_progress", "duplicate"]


@dataclass(frozen=True)
class LineView:
    """One order line as ordered."""

    sku: str
    name: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int


@dataclass(frozen=True)
class OrderView:
    """An order at one moment."""

    id: str
    store_id: int
    shopper_id: int | None
    device_id: int | None
    channel: str
    status: str
    lines: tuple[LineView, ...]
    total_minor: int
    currency: str
    created_at: datetime
    updated_at: datetime
    cancel_until: datetime
    tracking_ref: str | None
    carrier: str | None = None
    tracking_url: str | None = None
    expected_on: date | None = None  # the carrier's estimated day; None until a carrier gives one
    delay_reason: str | None = None  # why the carrier's day slipped, when it did
    ship_to: ShipTo | None = None  # None: placed before orders had addresses

    @classmethod
    def of(cls, order: Order) -> OrderView:
        """Snapshot an ORM order (its lines must be loadable)."""
        return cls(
            id=order.id,
            store_id=order.store_id,
            shopper_id=order.shopper_id,
            device_id=order.device_id,
            channel=order.channel,
            status=order.status,
            lines=tuple(
                LineView(
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price_minor=line.unit_price_minor,
                    line_total_minor=line.line_total_minor,
                )
                for line in order.lines
            ),
            total_minor=order.total_minor,
            currency=order.currency,
            created_at=order.created_at,
            updated_at=order.updated_at,
            cancel_until=order.cancel_until,
            tracking_ref=order.tracking_ref,
            carrier=order.carrier,
            tracking_url=order.tracking_url,
            expected_on=_day(order.expected_delivery_at),
            delay_reason=order.delay_reason,
            ship_to=ship_to_of(order),
        )

    def summary(self) -> dict[str, Any]:
        """The device-facing summary (CONTRACT: `{id, status, sku, quantity, total_minor, …}`)."""
        first = self.lines[0] if self.lines else None
        summary: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "sku": first.sku if first else None,
            "quantity": sum(line.quantity for line in self.lines),
            "total_minor": self.total_minor,
            "currency": self.currency,
            "cancel_until": _iso(self.cancel_until),
        }
        if len(self.lines) > 1:  # an appliance refilling several slots at once
            summary["lines"] = [{"sku": line.sku, "quantity": line.quantity} for line in self.lines]
        return summary

    def as_api(self) -> dict[str, Any]:
        """The REST shape (`GET /api/v1/orders`)."""
        return {
            "id": self.id,
            "status": self.status,
            "channel": self.channel,
            "lines": [{"sku": line.sku, "quantity": line.quantity} for line in self.lines],
            "total_minor": self.total_minor,
            "currency": self.currency,
            "created": _iso(self.created_at),
            "ship_to": self.ship_to.as_dict() if self.ship_to is not None else None,
        }


@dataclass(frozen=True)
class PlaceResult:
    """What a placement did: `placed`, `needs_approval`, `in_progress` or `duplicate`."""

    outcome: Outcome
    order: OrderView


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
