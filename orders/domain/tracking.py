"""Carrier tracking rules (pure): which carrier status moves which order, and what a slip is."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from orders.domain.errors import InvalidRequest, NotAllowed

CarrierStatus = Literal["in_transit", "out_for_delivery", "delivered", "exception", "returned"]
CARRIER_STATUSES: tuple[CarrierStatus, ...] = (
    "in_transit",
    "out_for_delivery",
    "delivered",
    "exception",
    "returned",
)
# EasyPost tracker statuses (Tracker.status / TrackingDetail.status) in our words; those
# mapped to None say nothing an order needs (no label yet, or the carrier does not know).
EASYPOST_STATUS: dict[str, CarrierStatus | None] = {
    "unknown": None,
    "pre_transit": None,
    "in_transit": "in_transit",
    "out_for_delivery": "out_for_delivery",
    # Waiting at a pickup point: the shopper still has to collect it.
    "available_for_pickup": "out_for_delivery",
    "delivered": "delivered",
    "return_to_sender": "returned",
    "failure": "exception",
    "error": "exception",
    "cancelled": "exception",
}
# Orders a carrier can still report on; a tracking event for any other is a conflict.
TRACKABLE = ("shipped", "delivered")
MAX_TEXT = 200
DEFAULT_REASONS: dict[CarrierStatus, str] = {
    "in_transit": "the carrier moved the delivery date",
    "out_for_delivery": "the carrier moved the delivery date",
    "delivered": "the carrier moved the delivery date",
    "exception": "the carrier reported a problem",
    "returned": "the parcel is being returned to the store",
}


@dataclass(frozen=True)
class TrackingFacts:
    """What the rules need about the order when an event arrives."""

    order_status: str
    expected_on: date  # the day the order is expected now (carrier's estimate or the promise)
    latest_event_at: datetime | None  # the newest carrier event already recorded


@dataclass(frozen=True)
class TrackingOutcome:
    """What one carrier event does to its order."""

    new_status: str | None  # None: the status stays
    expected_on: date | None  # None: the expected day stays
    delayed: bool
    reason: str | None  # why it is delayed (spoken and shown), when delayed


def check_carrier_status(value: object) -> CarrierStatus:
    """One of CARRIER_STATUSES, or InvalidRequest."""
    for status in CARRIER_STATUSES:
        if value == status:
            return status
    raise InvalidRequest("bad_status", f"status must be one of {', '.join(CARRIER_STATUSES)}")


def slipped(current: date, estimate: date | None) -> bool:
    """A slip: the carrier now expects a later day than the one the shopper was told."""
    return estimate is not None and estimate > current


def apply_tracking(
    facts: TrackingFacts,
    status: CarrierStatus,
    occurred_at: datetime,
    estimate: date | None,
    description: str | None,
) -> TrackingOutcome:
    """The rules: delivered moves a shipped order; a later estimate (or a return) delays it.

    An event older than the newest one recorded is kept for the timeline but does not move
    the expected day back (carriers resend and reorder their scans).
    """
    if facts.order_status not in TRACKABLE:
        raise NotAllowed("not_shipped", "tracking events apply to shipped orders")
    new_status = "delivered" if status == "delivered" and facts.order_status == "shipped" else None
    if facts.order_status == "delivered" or new_status == "delivered":
        return TrackingOutcome(new_status, None, False, None)
    stale = facts.latest_event_at is not None and occurred_at < facts.latest_event_at
    if stale:
        return TrackingOutcome(None, None, False, None)
    reason = (description or "").strip()[:MAX_TEXT] or DEFAULT_REASONS[status]
    if status == "returned":
        return TrackingOutcome(None, None, True, reason)
    if estimate is None or estimate == facts.expected_on:
        return TrackingOutcome(None, None, False, None)
    late = slipped(facts.expected_on, estimate)
    return TrackingOutcome(None, estimate, late, reason if late else None)
