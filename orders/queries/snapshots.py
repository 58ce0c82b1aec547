"""Read-only snapshots the services return, so adapters never hold live ORM rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from orders.domain.addresses import ShipTo, ship_to_of
from orders.store.model import Order

if TYPE_CHECKING:
    from orders.domain.decision import NewOrder

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
class HoldView:
    """Why an order waits for approval beyond the link's rule, and what had been agreed."""

    reason: str  # price_changed | product_changed
    consented_sku: str | None
    consented_price_minor: int | None

    @classmethod
    def of(cls, row: Any) -> HoldView | None:
        """From an order row (ORM or Core) with its hold columns; None when not held."""
        if row.hold_reason is None:
            return None
        return cls(row.hold_reason, row.consented_sku, row.consented_price_minor)

    @classmethod
    def of_new(cls, new: NewOrder) -> HoldView | None:
        """From an order just decided."""
        if new.hold is None:
            return None
        return cls(new.hold.reason, new.hold.consented_sku, new.hold.consented_price_minor)

    def as_dict(self, lines: tuple[LineView, ...]) -> dict[str, Any]:
        """Old and new: what was agreed, and what this order asks (its first line)."""
        first = lines[0] if lines else None
        return {
            "reason": self.reason,
            "was": {"sku": self.consented_sku, "unit_price_minor": self.consented_price_minor},
            "now": {
                "sku": first.sku if first else None,
                "unit_price_minor": first.unit_price_minor if first else None,
            },
        }


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
    test: bool = False  # a test order: no stock, no spending, never ships
    hold: HoldView | None = None  # why it waits for approval, when the guard held it
    approval_by: str | None = None  # while pending_approval: `shopper` or `merchant`

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
            test=order.test,
            hold=HoldView.of(order),
            approval_by=order.approval_by,
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
            # Only when set: a constrained device's payloads stay as small as before.
            **({"test": True} if self.test else {}),
            **({"reason": self.hold.reason} if self.hold is not None else {}),
        }
        if len(self.lines) > 1:  # an appliance refilling several slots at once
            summary["lines"] = [{"sku": line.sku, "quantity": line.quantity} for line in self.lines]
        return summary

    def hold_dict(self) -> dict[str, Any] | None:
        """The hold's old and new (`hold` of the API's order), or None."""
        return self.hold.as_dict(self.lines) if self.hold is not None else None

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
            "test": self.test,
            "hold": self.hold_dict(),
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
