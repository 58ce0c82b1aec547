"""Pure rules about money, caps, time windows and order status: no I/O here."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orders.domain.errors import InvalidRequest, NotAllowed

MAX_QUANTITY = 99

# Which status may follow which, and who may make the move.
TRANSITIONS: dict[tuple[str, str], frozenset[str]] = {
    ("pending_approval", "placed"): frozenset({"shopper", "merchant"}),
    ("pending_approval", "cancelled"): frozenset({"shopper", "merchant"}),
    ("placed", "cancelled"): frozenset({"shopper", "merchant"}),
    ("placed", "shipped"): frozenset({"merchant"}),
    ("shipped", "delivered"): frozenset({"merchant"}),
}


@dataclass(frozen=True)
class PricedLine:
    """A requested line priced from the catalog."""

    product_id: int
    sku: str
    name: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        """Line total in minor units."""
        return self.unit_price_minor * self.quantity


def check_quantity(quantity: int) -> None:
    """Refuse quantities that are not a whole number from 1 to MAX_QUANTITY."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidRequest("bad_quantity", "quantity must be a whole number")
    if not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidRequest("bad_quantity", f"quantity must be 1 to {MAX_QUANTITY}")


def order_total(lines: Iterable[PricedLine]) -> int:
    """Sum of line totals, in minor units."""
    return sum(line.total_minor for line in lines)


def month_start(now: datetime) -> datetime:
    """Start of the calendar month (UTC) that `now` falls in."""
    now = now.astimezone(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def exceeds_cap(total_minor: int, spent_minor: int, cap_minor: int | None) -> bool:
    """True when spending `total_minor` on top of `spent_minor` goes over `cap_minor`."""
    return cap_minor is not None and spent_minor + total_minor > cap_minor


def cancel_deadline(created_at: datetime, window_minutes: int) -> datetime:
    """The last moment a shopper may cancel an order created at `created_at`."""
    return created_at + timedelta(minutes=window_minutes)


def left_store(status: str) -> bool:
    """Whether the parcel is on its way or has arrived (what a tracking section is about)."""
    return status in ("shipped", "delivered")


def check_transition(current: str, target: str, actor: str) -> None:
    """Raise NotAllowed unless `actor` may move an order from `current` to `target`."""
    allowed = TRANSITIONS.get((current, target))
    if allowed is None:
        raise NotAllowed("invalid_transition", f"an order {current} cannot become {target}")
    if actor not in allowed:
        raise NotAllowed("not_permitted", f"a {actor} cannot make an order {target}")


def check_shopper_cancel(status: str, cancel_until: datetime, now: datetime) -> None:
    """A shopper cancels a placed order only inside the cancel window."""
    if status == "placed" and now > cancel_until:
        raise NotAllowed("cancel_window_closed", "the cancel window has closed")
